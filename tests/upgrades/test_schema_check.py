"""`lukas db upgrade --check` and `lukas db upgrade` name how the database and the code relate (issue 23, item 7),
and a Lukas whose code is older than the database runs on it with a warning instead of refusing (rolling upgrades).
The revisions come from the migration files, so these tests follow every new migration."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import migrate
from bot.store.db import redacted
from tests.helpers import in_thread
from tests.upgrades.helpers import migrations_without_newest, newest_and_previous


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = in_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_and_upgrade_say_new_behind_agree(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    head, previous = newest_and_previous()
    url = ["--database-url", database_url]

    code, out, _ = run_cli(capsys, "db", "upgrade", "--check", *url)
    assert code == 3 and "its revision:   (none" in out and f"code's newest:  {head}" in out
    assert asyncio.run(migrate.database_revision(database_url)) is None  # --check changed nothing
    if database_url.startswith("sqlite"):
        assert not Path(database_url.split(":///", 1)[1]).exists()  # not even an empty SQLite file

    in_thread(migrate.upgrade, database_url, previous)
    code, out, _ = run_cli(capsys, "db", "upgrade", "--check", *url)
    assert code == 3 and f"the database ({previous}) is behind this Lukas ({head})" in out

    code, out, _ = run_cli(capsys, "db", "upgrade", *url)
    assert (
        code == 0 and out.strip() == f"database upgraded from revision {previous} to {head}: {redacted(database_url)}"
    )

    code, out, _ = run_cli(capsys, "db", "upgrade", "--check", *url)
    assert code == 0 and f"agree (revision {head})" in out

    code, out, _ = run_cli(capsys, "db", "upgrade", *url)
    assert code == 0 and out.startswith(f"database is up to date (revision {head})")


def test_a_new_database_is_created_not_up_to_date(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    head, _ = newest_and_previous()
    code, out, _ = run_cli(capsys, "db", "upgrade", "--database-url", database_url)
    assert code == 0 and out.startswith(f"database created (revision {head}): ")
    assert asyncio.run(migrate.database_revision(database_url)) == head


def test_older_code_on_a_newer_database_runs_with_a_warning(
    migrated_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database is at the newest revision; the code knows only up to the one before (as a replica still on
    the previous release does). Nothing refuses, nothing downgrades, and the admin is told."""
    head, previous = newest_and_previous()
    older = migrations_without_newest(tmp_path)
    monkeypatch.setattr(migrate, "migrations_dir", lambda: older)
    assert migrate.head_revision() == previous

    code, out, _ = run_cli(capsys, "db", "upgrade", "--check", "--database-url", migrated_db)
    assert code == 4 and f"the database ({head}) was migrated by a newer Lukas" in out

    code, out, err = run_cli(capsys, "db", "upgrade", "--database-url", migrated_db)
    assert code == 0 and out == "" and err.startswith(f"warning: the database ({head}) was migrated by a newer Lukas")

    with caplog.at_level(logging.WARNING, logger="bot.store.migrate"):
        assert asyncio.run(migrate.upgrade_on_start(migrated_db, log_level="WARNING")) is False
    assert any("migrated by a newer Lukas" in record.getMessage() for record in caplog.records)
    assert asyncio.run(migrate.database_revision(migrated_db)) == head  # not downgraded


def test_a_sqlite_database_with_replies_upgrades_across_every_migration(tmp_path: Path) -> None:
    """Batch migrations rebuild tables on SQLite; with foreign keys on, dropping the old `messages` failed as soon as
    a reply pointed at a message (found by the rolling-upgrade test: upgrading 0004 -> 0005 with data)."""
    chain = migrate.migration_chain()
    assert chain is not None
    (root,) = [revision for revision, down in chain.items() if down is None]
    path = tmp_path / "lukas.db"
    url = f"sqlite:///{path}"
    in_thread(migrate.upgrade, url, root)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO conversations (id, team_id, channel_id, thread_ts, kind, created_at) "
            "VALUES (1, 'T1', 'D1', '', 'dm', '2026-01-01 00:00:00')"
        )
        for id_, sender, reply_to in ((1, "user", None), (2, "bot", 1)):
            connection.execute(
                "INSERT INTO messages (id, conversation_id, channel_id, sender, content, flagged, created_at, "
                "reply_to_id) VALUES (?, 1, 'D1', ?, 'hi', 0, '2026-01-01 00:00:00', ?)",
                (id_, sender, reply_to),
            )
    in_thread(migrate.upgrade, url)
    assert asyncio.run(migrate.database_revision(url)) == migrate.head_revision()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT id, reply_to_id FROM messages ORDER BY id").fetchall() == [(1, None), (2, 1)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
