"""Run Alembic from inside Lukas: `lukas db upgrade`, upgrade-on-start, and the drift check in tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import DatabaseUnavailableError
from bot.store.db import redacted, resolve_url


def migrations_dir() -> Path:
    import bot.migrations

    return Path(bot.migrations.__file__).parent


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", resolve_url(url).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Blocking; call from a thread when an event loop is running (env.py runs its own loop)."""
    resolved = resolve_url(url)
    try:
        command.upgrade(alembic_config(resolved), revision)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise DatabaseUnavailableError(f"cannot migrate the database at {redacted(resolved)}: {reason}") from None
    except CommandError as exc:  # e.g. the database was migrated by a newer Lukas than this one
        raise DatabaseUnavailableError(
            f"cannot migrate the database at {redacted(resolved)}: {exc} (was it created by a newer version of Lukas?)"
        ) from None


async def upgrade_async(url: str | None = None) -> None:
    await asyncio.to_thread(upgrade, url)


def check(url: str | None = None) -> None:
    """Raise alembic.util.CommandError when the models and the migrations have drifted apart."""
    command.check(alembic_config(url))
