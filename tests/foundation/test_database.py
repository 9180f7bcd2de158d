"""`lukas db upgrade` on SQLite and PostgreSQL, no drift between models and migrations, clear errors for bad URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.errors import DatabaseUnavailableError
from bot.store import migrate
from bot.store.db import create_engine, ping, redacted, resolve_url, session_factory
from bot.store.models import Base, Conversation, GeneratedImage, Message
from tests.helpers import clean_env, free_port, in_thread, run_lukas

PASSWORD = "hunter2-not-for-logs"


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_db_upgrade_creates_every_table(database_url: str, tmp_path: Path) -> None:
    result = run_lukas("db", "upgrade", env=clean_env(DATABASE_URL=database_url), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database created (revision ")  # a new database: created, not "up to date"
    assert "Traceback" not in result.stderr

    engine = create_engine(database_url)
    try:
        assert await table_names(engine) == set(Base.metadata.tables) | {"alembic_version"}
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda sync: {
                    table: {c["name"] for c in inspect(sync).get_columns(table)} for table in Base.metadata.tables
                }
            )
        for table in Base.metadata.tables.values():
            assert columns[table.name] == {column.name for column in table.columns}, table.name
    finally:
        await engine.dispose()

    again = run_lukas("db", "upgrade", env=clean_env(DATABASE_URL=database_url), cwd=tmp_path)
    assert again.returncode == 0, again.stderr  # upgrading an up-to-date database is a no-op
    assert again.stdout.startswith("database is up to date (revision ")


def test_models_and_migrations_do_not_drift(migrated_db: str) -> None:
    in_thread(migrate.check, migrated_db)  # alembic check: raises when autogenerate would find changes


async def test_unique_keys_hold_in_the_database(db_engine: AsyncEngine) -> None:
    """Exactly-once depends on these constraints existing in the migrated schema, not only in the models."""
    sessions = session_factory(db_engine)
    async with sessions() as session:
        session.add(GeneratedImage(slot_key="2026-W47"))
        await session.commit()
    async with sessions() as session:
        session.add(GeneratedImage(slot_key="2026-W47"))
        with pytest.raises(IntegrityError):
            await session.commit()

    async with sessions() as session:
        conversation = Conversation(channel_id="D1", kind="dm")
        session.add(conversation)
        await session.flush()
        session.add(
            Message(conversation_id=conversation.id, channel_id="D1", event_id="Ev1", sender="user", content="hi")
        )
        await session.commit()
        conversation_id = conversation.id
    async with sessions() as session:
        session.add(
            Message(conversation_id=conversation_id, channel_id="D1", event_id="Ev1", sender="user", content="hi")
        )
        with pytest.raises(IntegrityError):
            await session.commit()
    async with sessions() as session:
        stored = (await session.execute(select(Message))).scalars().all()
        assert [m.event_id for m in stored] == ["Ev1"]


def test_db_upgrade_defaults_to_a_sqlite_file_under_data(tmp_path: Path) -> None:
    result = run_lukas("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "lukas.db").is_file()
    assert "sqlite+aiosqlite:///./data/lukas.db" in result.stdout


@pytest.mark.parametrize(
    "url",
    ["postgres://lukas:{pw}@127.0.0.1:5432/lukas", "postgresql://lukas:{pw}@db/lukas", "sqlite:///x.db"],
)
def test_resolve_url_picks_the_async_drivers(url: str) -> None:
    resolved = resolve_url(url.format(pw=PASSWORD))
    assert resolved.split("://")[0] in ("postgresql+psycopg", "sqlite+aiosqlite")
    assert PASSWORD not in redacted(resolved)


# ----- databases that cannot be used: one clear line, exit 1, no traceback, no password


def _assert_one_clear_line(result_stderr: str) -> str:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert lines[0].startswith("lukas: ")
    assert "Traceback" not in result_stderr
    assert PASSWORD not in result_stderr
    return lines[0]


def test_unreachable_postgres_is_one_clear_line(tmp_path: Path) -> None:
    url = f"postgresql://lukas:{PASSWORD}@127.0.0.1:{free_port()}/lukas"
    result = run_lukas("db", "upgrade", env=clean_env(DATABASE_URL=url), cwd=tmp_path)
    assert result.returncode == 1
    line = _assert_one_clear_line(result.stderr)
    assert "cannot migrate the database at postgresql+psycopg://lukas:***@127.0.0.1:" in line
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("this is not a url", "DATABASE_URL is not a database URL"),
        (f"mysql://lukas:{PASSWORD}@127.0.0.1/lukas", "'mysql', which Lukas does not support"),
        (f"postgresql+asyncpg://lukas:{PASSWORD}@127.0.0.1/lukas", "cannot use the database URL"),
        ("sqlite:///{tmp}/a-file/lukas.db", "cannot create the folder for the SQLite database"),
    ],
    ids=["garbage", "mysql", "missing-driver", "folder-is-a-file"],
)
def test_unusable_database_urls_are_one_clear_line(tmp_path: Path, url: str, expected: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    result = run_lukas("db", "upgrade", env=clean_env(DATABASE_URL=url.format(tmp=tmp_path)), cwd=tmp_path)
    assert result.returncode == 1
    assert expected in _assert_one_clear_line(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_unknown_revision_is_a_clear_warning(tmp_path: Path) -> None:
    """A database migrated by a newer Lukas (a revision this one does not know) is left alone with one clear line,
    and `lukas db upgrade` succeeds: the image runs it before `lukas run`, also for an older replica mid-rollout."""
    import sqlite3

    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    result = run_lukas("db", "upgrade", env=clean_env(DATABASE_URL=f"sqlite:///{path}"), cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("warning: the database (9999_from_the_future) was migrated by a newer Lukas")
    check = run_lukas("db", "upgrade", "--check", env=clean_env(DATABASE_URL=f"sqlite:///{path}"), cwd=tmp_path)
    assert check.returncode == 4


async def test_ping_raises_a_lukas_error_with_the_password_hidden() -> None:
    engine = create_engine(f"postgresql://lukas:{PASSWORD}@127.0.0.1:{free_port()}/lukas")
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await ping(engine)
    finally:
        await engine.dispose()
    assert PASSWORD not in str(caught.value)
    assert "lukas:***@127.0.0.1" in str(caught.value)


def test_drift_check_notices_a_model_change(migrated_db: str) -> None:
    """The no-drift test above can fail: a table the migrations lack is reported."""
    from alembic.util import CommandError
    from sqlalchemy import Column, Integer, Table

    extra = Table("lukas_drift_probe", Base.metadata, Column("id", Integer, primary_key=True))
    try:
        with pytest.raises(CommandError, match="lukas_drift_probe"):
            in_thread(migrate.check, migrated_db)
    finally:
        Base.metadata.remove(extra)
