"""`lukas backup` / `lukas restore` (issue 23, item 8): back up a Lukas that has talked, wipe the database and the
kept pictures, restore, and the next answer carries the restored conversation to the model."""

from __future__ import annotations

import datetime as dt
import os
import stat
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.store import migrate
from bot.store.backup import backup, restore
from bot.store.db import create_engine, session_factory
from bot.store.models import Conversation, Instance, Message, MetricsSnapshot
from tests.harness import message_event, running_lukas
from tests.helpers import POSTGRES_ENV, in_thread, postgres_database
from tests.standins.slack_api import SlackStandIn

PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def cli(*args: str) -> int:
    return in_thread(main, list(args))


async def wipe(url: str) -> None:
    """Drop every table, alembic_version included: the database is as empty as a new one."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            metadata = sa.MetaData()
            await connection.run_sync(metadata.reflect)
            await connection.run_sync(metadata.drop_all)
            assert await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names()) == []
    finally:
        await engine.dispose()


async def row_count(engine: AsyncEngine, model: type) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(sa.select(sa.func.count()).select_from(model))).scalar_one())


async def test_backup_wipe_restore_then_lukas_answers_from_it(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    kept = data_dir / "images" / "2026-W49.png"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(PICTURE)
    monkeypatch.setenv("LUKAS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LUKAS_CONFIG", str(tmp_path / "no-config.yml"))  # the default storage_dir: images
    archive = tmp_path / "backups" / "lukas.zip"

    async with SlackStandIn() as slack:  # one Slack for both runs: the ts it gives replies keep going up
        slack.add_user("U0ANNA", display_name="Anna")
        async with running_lukas(tmp_path / "before", database_url, slack=slack) as h:
            await h.send(message_event(text="My favourite honey is acacia."))
            await h.wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 1)
            await h.settle()
            before = [(m.sender, m.content) for m in await h.messages()]
        assert before == [("user", "My favourite honey is acacia."), ("bot", "Hello from the honey pot! 🐻")]

        assert cli("backup", str(archive), "--database-url", database_url) == 0
        assert "1 kept picture(s)" in capsys.readouterr().out
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds conversations

        await wipe(database_url)
        kept.unlink()
        assert cli("restore", str(archive), "--database-url", database_url) == 0
        assert "1 kept picture(s)" in capsys.readouterr().out
        assert kept.read_bytes() == PICTURE
        assert await migrate.database_revision(database_url) == migrate.head_revision()

        async with running_lukas(tmp_path / "after", database_url, slack=slack) as h:
            await h.send(message_event(text="Which honey do I like best?"))
            await h.wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 2)
            await h.settle()
            sent = h.llm.chat_requests[0].body["messages"]
            assert [m for m in sent if m["role"] != "system"] == [
                {"role": "user", "content": "Anna: My favourite honey is acacia."},
                {"role": "assistant", "content": "Hello from the honey pot! 🐻"},
                {"role": "user", "content": "Anna: Which honey do I like best?"},
            ]
            messages = await h.messages()
            assert len({m.conversation_id for m in messages}) == 1 and len(messages) == 4  # ids go on after the old


async def test_restore_refuses_a_database_with_rows_unless_forced(
    tmp_path: Path, db_engine: AsyncEngine, migrated_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions = session_factory(db_engine)
    async with sessions() as session:
        session.add(Conversation(channel_id="D1", kind="dm"))
        await session.commit()
    archive = tmp_path / "lukas.zip"
    assert cli("backup", str(archive), "--database-url", migrated_db) == 0
    async with sessions() as session:
        session.add(Conversation(channel_id="D2", kind="dm"))
        await session.commit()
    capsys.readouterr()

    assert cli("restore", str(archive), "--database-url", migrated_db) == 1
    err = capsys.readouterr().err
    assert "is not empty: conversations (2) rows" in err and "--force" in err
    assert await row_count(db_engine, Conversation) == 2  # nothing touched

    assert cli("restore", str(archive), "--database-url", migrated_db, "--force") == 0
    assert await row_count(db_engine, Conversation) == 1


async def test_a_database_lukas_only_started_on_counts_as_empty(
    tmp_path: Path, db_engine: AsyncEngine, migrated_db: str
) -> None:
    """Heartbeats and metrics are what any start writes; they do not make a database "not empty"."""
    archive = tmp_path / "lukas.zip"
    assert cli("backup", str(archive), "--database-url", migrated_db) == 0
    async with session_factory(db_engine)() as session:
        session.add(Instance(id="i-1", host="h", started_at=1.0, heartbeat_at=2.0))
        session.add(MetricsSnapshot(instance_id="i-1"))
        await session.commit()
    assert cli("restore", str(archive), "--database-url", migrated_db) == 0
    assert await row_count(db_engine, Instance) == 0


@pytest.mark.parametrize("content", [b"not a zip at all", b"zip"], ids=["not-a-zip", "zip-without-manifest"])
def test_a_file_that_is_not_a_backup_is_named_as_such(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "photo.zip"
    if content == b"zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("holiday.jpg", b"...")
    else:
        path.write_bytes(content)
    target = tmp_path / "target.db"
    assert cli("restore", str(path), "--database-url", f"sqlite:///{target}") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lukas: ") and ("not a Lukas backup" in err or "cannot read the backup" in err)
    assert "Traceback" not in err and not target.exists()


async def test_a_sqlite_backup_restores_into_postgresql(tmp_path: Path) -> None:
    """Moving from one Lukas on SQLite to replicas on PostgreSQL: the same file, times and flags intact."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(f"needs {POSTGRES_ENV}")
    source = f"sqlite+aiosqlite:///{tmp_path / 'lukas.db'}"
    in_thread(migrate.upgrade, source)
    created = dt.datetime(2026, 3, 29, 0, 30, 15, 123456, tzinfo=dt.UTC)
    engine = create_engine(source)
    try:
        async with session_factory(engine)() as session:
            conversation = Conversation(channel_id="D1", kind="dm", created_at=created)
            session.add(conversation)
            await session.flush()
            session.add(
                Message(conversation_id=conversation.id, channel_id="D1", sender="user", content="ü 🐻", flagged=True)
            )
            await session.commit()
    finally:
        await engine.dispose()
    in_thread(backup, source, tmp_path / "b.zip", pictures_dir=None)
    with postgres_database(server) as target:
        summary = in_thread(restore, target, tmp_path / "b.zip", pictures_dir=None, force=False)
        assert summary.rows["conversations"] == 1 and summary.rows["messages"] == 1
        engine = create_engine(target)
        try:
            async with session_factory(engine)() as session:
                (conversation,) = (await session.scalars(sa.select(Conversation))).all()
                (message,) = (await session.scalars(sa.select(Message))).all()
                assert conversation.created_at == created
                assert (message.content, message.flagged, message.conversation_id) == ("ü 🐻", True, conversation.id)
                session.add(Conversation(channel_id="D2", kind="dm"))  # the id sequence moved past the restored rows
                await session.commit()
        finally:
            await engine.dispose()
