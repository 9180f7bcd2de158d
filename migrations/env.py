"""Alembic environment: async, using the bot's own URL resolution (DATABASE_URL or the SQLite default)."""

from __future__ import annotations

import asyncio
import logging

from alembic import context
from sqlalchemy.engine import Connection

from bot.store.db import create_engine, redacted, resolve_url
from bot.store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return resolve_url(config.get_main_option("sqlalchemy.url") or None)


def _configure(connection: Connection | None = None) -> None:
    options = {
        "target_metadata": target_metadata,
        "compare_type": True,
        "render_as_batch": True,  # SQLite needs batch mode to alter tables
    }
    if connection is None:
        context.configure(url=_url(), literal_binds=True, **options)
    else:
        context.configure(connection=connection, **options)


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:  # batch mode rebuilds a table and drops the old one: with foreign keys on, rows referencing
                # it (a reply's reply_to_id) make the DROP fail. Off outside the transaction, as Alembic's docs say.
                await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.run_sync(_run_sync)
            if sqlite and (await connection.exec_driver_sql("PRAGMA foreign_key_check")).first() is not None:
                logging.getLogger("bot.store.migrate").warning(
                    "the database at %s has rows pointing at rows that do not exist (see `PRAGMA foreign_key_check` "
                    "in sqlite3); Lukas works on, but a backup and a look are worth it",
                    redacted(_url()),
                )
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure()
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    else:
        asyncio.run(_run_async())
