"""Engine and sessions. DATABASE_URL picks the database; the default is a SQLite file under ./data."""

from __future__ import annotations

import errno
import functools
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.errors import DatabaseUnavailableError
from bot.logging_setup import StoppedByShutdown
from bot.startup_logic import unwritable_folder_message

DEFAULT_URL = "sqlite+aiosqlite:///./data/lukas.db"
_URL_EXAMPLES = "use sqlite:///./data/lukas.db or postgresql://user:password@host:5432/lukas"


def resolve_url(url: str | None = None) -> str:
    """Accept the URLs admins usually write and pick the async driver for them."""
    raw = url or os.environ.get("DATABASE_URL") or DEFAULT_URL
    try:
        parsed = make_url(raw)
    except ArgumentError:  # the message never repeats the URL: it may hold a password
        raise DatabaseUnavailableError(f"DATABASE_URL is not a database URL; {_URL_EXAMPLES}") from None
    driver = {
        "sqlite": "sqlite+aiosqlite",
        "sqlite+pysqlite": "sqlite+aiosqlite",
        "postgres": "postgresql+psycopg",
        "postgresql": "postgresql+psycopg",
        "postgresql+psycopg2": "postgresql+psycopg",
    }.get(parsed.drivername, parsed.drivername)
    if driver.split("+", 1)[0] not in ("sqlite", "postgresql"):
        raise DatabaseUnavailableError(
            f"DATABASE_URL names the database {driver.split('+', 1)[0]!r}, which Lukas does not support; "
            + _URL_EXAMPLES
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# A task the shutdown cancels while it holds a connection: SQLAlchemy logs the cancelled rollback as an error with a
# traceback; the connection is simply discarded and nothing is lost (found by CI: a picture catch-up at SIGTERM).
for _pool in ("AsyncAdaptedQueuePool", "QueuePool", "NullPool", "StaticPool", "SingletonThreadPool"):
    logging.getLogger(f"sqlalchemy.pool.impl.{_pool}").addFilter(
        StoppedByShutdown("a database connection in use by a task the shutdown stopped was dropped; nothing is lost")
    )


def create_engine(url: str | None = None) -> AsyncEngine:
    resolved = resolve_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            _require_writable_folder(Path(database))
        engine = _create(resolved, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "do_connect", _open_before_aiosqlite)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return _create(resolved, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=10)


def _require_writable_folder(database: Path) -> None:
    """SQLite (in WAL mode) writes next to its file: an unwritable folder is named with the fix, at once, instead
    of sqlite's 'unable to open database file' at the first query."""
    folder = database.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise DatabaseUnavailableError(
                f"cannot create the folder for the SQLite database {database}: {exc.strerror or exc}"
            ) from None
    writable = os.access(folder, os.W_OK | os.X_OK) and (
        not database.exists() or os.access(database, os.R_OK | os.W_OK)
    )
    if not writable:
        uid = os.geteuid() if hasattr(os, "geteuid") else None
        raise DatabaseUnavailableError(unwritable_folder_message(folder=str(folder), database=database.name, uid=uid))


def _open_before_aiosqlite(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
    """Open the file with sqlite3 first, so a file that cannot be opened fails here. aiosqlite's own failed open
    leaves its worker thread to report a stop to the event loop later; when Lukas exits on that very error, the
    loop is closed first and the thread dies printing 'Event loop is closed' after the error line (issue 23)."""
    sqlite3.connect(cargs[0], uri=bool(cparams.get("uri")), timeout=0).close()


def _create(url: str, **options: object) -> AsyncEngine:
    try:
        return create_async_engine(url, **options)
    except (SQLAlchemyError, ImportError) as exc:  # e.g. a sync-only or missing driver in the URL
        reason = str(exc).splitlines()[0]
        raise DatabaseUnavailableError(f"cannot use the database URL {redacted(url)}: {reason}") from None


def create_sqlite_sync_engine(url: str) -> Engine:
    """A blocking engine on the same SQLite file, for the chat units run on a worker thread (bot.store.units)."""
    parsed = make_url(resolve_url(url))
    engine = sa_create_engine(
        parsed.set(drivername="sqlite+pysqlite"),
        connect_args={"timeout": 10, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@functools.cache
def upsert_insert(dialect: str) -> Any:
    """The dialect's own INSERT construct, which has ON CONFLICT (`on_conflict_do_nothing`/`_do_update`).

    Imported here, not at the top: a process holds only its engine's dialect (PostgreSQL's package imports its five
    drivers' modules: 2.4 MB of a SQLite bot's RSS at rest).
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise DatabaseUnavailableError (with the password hidden) when the database does not answer."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise DatabaseUnavailableError(f"cannot reach the database at {redacted(str(engine.url))}: {reason}") from None
