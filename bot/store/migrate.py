"""Run Alembic from inside Lukas: `lukas db upgrade`, upgrade-on-start, and the drift check in tests.

Alembic (and Mako, which it brings) costs ~15 MB that a running bot never needs again, so it is imported only
inside the functions that migrate. `lukas run` first compares the database's revision with the newest migration
using plain SQLAlchemy; only when they differ does it migrate, in a short-lived child process (issue 17).
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import DatabaseUnavailableError
from bot.store.db import create_engine, redacted, resolve_url
from bot.store.migrate_logic import SchemaState, describe_state, schema_state

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)


def migrations_dir() -> Path:
    import bot.migrations

    return Path(bot.migrations.__file__).parent


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    # Alembic binds its default stdout when alembic.config is first imported: pass today's, so a stream closed
    # since (a test's captured output, a redirected CLI) is never written to.
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", resolve_url(url).replace("%", "%%"))
    return config


def _cannot_migrate(url: str, exc: BaseException) -> DatabaseUnavailableError:
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return DatabaseUnavailableError(f"cannot migrate the database at {redacted(url)}: {reason}")


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Blocking; call from a thread when an event loop is running (env.py runs its own loop)."""
    from alembic import command
    from alembic.util import CommandError

    resolved = resolve_url(url)
    try:
        command.upgrade(alembic_config(resolved), revision)
    except (SQLAlchemyError, OSError) as exc:
        raise _cannot_migrate(resolved, exc) from None
    except CommandError as exc:  # e.g. the database was migrated by a newer Lukas than this one
        raise DatabaseUnavailableError(
            f"cannot migrate the database at {redacted(resolved)}: {exc} (was it created by a newer version of Lukas?)"
        ) from None


async def upgrade_async(url: str | None = None) -> None:
    await asyncio.to_thread(upgrade, url)


def check(url: str | None = None) -> None:
    """Raise alembic.util.CommandError when the models and the migrations have drifted apart."""
    from alembic import command

    command.check(alembic_config(url))


def _module_constants(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """Top-level `name = <literal>` (or `name: type = <literal>`) assignments of a Python file, without running it."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target, value = (node.targets[0], node.value) if isinstance(node, ast.Assign) else (None, None)
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id in names and isinstance(value, ast.Constant):
            values[target.id] = value.value
    return values


def migration_chain() -> dict[str, str | None] | None:
    """revision -> down_revision of every migration, read from the files without Alembic; None unless it is one
    plain chain. None (branches, merges, ids that are not plain strings) only means "let Alembic decide"."""
    revisions: dict[str, str | None] = {}
    for path in sorted((migrations_dir() / "versions").glob("*.py")):
        values = _module_constants(path, ("revision", "down_revision"))
        revision, down = values.get("revision"), values.get("down_revision")
        if revision is None:
            continue  # not a migration (e.g. __init__.py)
        if not isinstance(revision, str) or not isinstance(down, str | None) or "down_revision" not in values:
            return None
        revisions[revision] = down
    heads = set(revisions) - set(revisions.values())
    return revisions if len(heads) == 1 and len(set(revisions.values())) == len(revisions) else None


def head_revision() -> str | None:
    """The newest migration's revision id (see migration_chain; None: let Alembic decide, never a wrong skip)."""
    chain = migration_chain()
    return None if chain is None else (set(chain) - set(chain.values())).pop()


async def schema_status(url: str | None = None) -> tuple[SchemaState, str | None, str | None]:
    """(state, the database's revision, this code's newest): see migrate_logic.schema_state."""
    resolved = resolve_url(url)
    chain = migration_chain()
    head = head_revision()
    current = await database_revision(resolved)
    return schema_state(database=current, head=head, known=chain or ()), current, head


async def database_revision(url: str) -> str | None:
    """The revision recorded in alembic_version (None: a new database); raises DatabaseUnavailableError like
    upgrade() does when the database cannot be reached. A SQLite file that does not exist is not created."""
    parsed = make_url(resolve_url(url))
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and not file.startswith(("file:", ":")) and not Path(file).exists():
        return None
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            if not await connection.run_sync(lambda sync: sa.inspect(sync).has_table("alembic_version")):
                return None
            rows = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars().all()
    except (SQLAlchemyError, OSError) as exc:
        raise _cannot_migrate(url, exc) from None
    finally:
        await engine.dispose()
    return rows[0] if len(rows) == 1 else "(several)"


async def upgrade_on_start(url: str | None = None, *, log_level: str = "INFO", json_lines: bool = False) -> bool:
    """`lukas run`: migrate unless the database already is at the newest revision, or ahead of it (a newer Lukas
    migrated it during a rolling upgrade: this one runs on it with a warning); True when it migrated.

    The migration runs in a child process, so Alembic's memory is gone once it is done; errors are the same one
    clear line `lukas db upgrade` gives.
    """
    resolved = resolve_url(url)
    if head_revision() is not None:
        state, current, head = await schema_status(resolved)
        if state == "agree":
            log.debug("database is at the newest revision (%s): nothing to migrate", head)
            return False
        if state == "ahead":  # a rolling upgrade: a newer replica migrated first; never downgrade under it
            log.warning("%s", describe_state(state=state, database=current, head=head))
            return False
    options = json.dumps({"url": resolved, "path": sys.path, "log_level": log_level, "json_lines": json_lines})
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
    except OSError as exc:  # no usable interpreter to start (an embedded Python): migrate here instead
        log.info("migrating in this process (could not start a child: %s)", exc)
        await upgrade_async(resolved)
        return True
    out, _ = await child.communicate(options.encode())  # the URL travels on stdin: argv is visible in ps
    if child.returncode != 0:
        message = out.decode(errors="replace").strip()
        raise DatabaseUnavailableError(
            message
            or f"cannot migrate the database at {redacted(resolved)}: the migration process failed "
            f"(exit {child.returncode}; its error is above)"
        )
    return True


# The child: the parent's sys.path (the same Lukas), its logging, then upgrade(); a Lukas error is printed to stdout
# for the parent to raise; anything else is a traceback on the shared stderr.
_CHILD = (
    "import json, sys; o = json.load(sys.stdin); sys.path[:] = o['path']; import bot.store.migrate as m; m._child(o)"
)


def _child(options: dict[str, object]) -> None:
    from bot.logging_setup import configure_logging

    configure_logging(level=str(options["log_level"]), json_lines=bool(options["json_lines"]))
    try:
        upgrade(str(options["url"]))
    except DatabaseUnavailableError as exc:
        print(exc, flush=True)
        raise SystemExit(1) from None
