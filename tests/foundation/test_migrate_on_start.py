"""`lukas run` migrates only when the database is behind, in a child process, with today's clear errors (issue 17).

Alembic and Mako stay out of the running bot: a cheap look at alembic_version decides, and the upgrade itself
runs in a short-lived child whose memory is gone when it exits.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot.errors import DatabaseUnavailableError
from bot.store import migrate
from tests.helpers import clean_env, free_port, in_thread

# A fresh interpreter: only there does sys.modules say whether the running bot imported Alembic.
FRESH_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from bot.store import migrate

    url = sys.argv[1]
    first = asyncio.run(migrate.upgrade_on_start(url, log_level="WARNING"))
    again = asyncio.run(migrate.upgrade_on_start(url, log_level="WARNING"))
    heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("alembic", "mako"))
    print(json.dumps({"first": first, "again": again, "heavy": heavy}))
    """
)


def test_head_revision_is_the_one_alembic_finds() -> None:
    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite:///unused.db")).get_current_head()
    assert head is not None and migrate.head_revision() == head


def test_migrates_once_in_a_child_and_never_imports_alembic(database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FRESH_SCRIPT, database_url],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["first"], out["again"]) == (True, False)  # the second start finds the database up to date
    assert out["heavy"] == []
    assert asyncio.run(migrate.database_revision(database_url)) == migrate.head_revision()


def _newer_database(tmp_path: Path) -> str:
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    return f"sqlite:///{path}"


async def test_errors_are_the_same_line_lukas_db_upgrade_gives() -> None:
    url = f"postgresql://lukas:hunter2-secret@127.0.0.1:{free_port()}/lukas"
    with pytest.raises(DatabaseUnavailableError) as in_process:
        in_thread(migrate.upgrade, url)
    with pytest.raises(DatabaseUnavailableError) as on_start:
        await migrate.upgrade_on_start(url, log_level="WARNING")
    assert str(on_start.value) == str(in_process.value)
    assert "hunter2-secret" not in str(on_start.value)
    assert str(on_start.value).startswith("cannot migrate the database at ")


async def test_a_database_from_a_newer_lukas_is_left_alone(tmp_path: Path) -> None:
    """Alembic itself refuses a revision it does not know; `lukas run` starts on it (a rolling upgrade, issue 23)."""
    url = _newer_database(tmp_path)
    with pytest.raises(DatabaseUnavailableError, match="was it created by a newer version of Lukas"):
        in_thread(migrate.upgrade, url)
    assert await migrate.upgrade_on_start(url, log_level="WARNING") is False
    assert await migrate.database_revision(url) == "9999_from_the_future"


async def test_a_crashing_child_is_reported_not_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrate, "_CHILD", "raise SystemExit(3)")
    url = f"sqlite+aiosqlite:///{tmp_path / 'lukas.db'}"
    with pytest.raises(DatabaseUnavailableError, match=r"the migration process failed \(exit 3"):
        await migrate.upgrade_on_start(url)


async def test_without_a_child_process_it_migrates_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def cannot_start(*_args: object, **_kwargs: object) -> None:
        raise OSError("no interpreter")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", cannot_start)
    url = f"sqlite+aiosqlite:///{tmp_path / 'lukas.db'}"
    assert await migrate.upgrade_on_start(url) is True
    assert await migrate.database_revision(url) == migrate.head_revision()


def _write_versions(folder: Path, chain: dict[str, str | None]) -> None:
    versions = folder / "versions"
    versions.mkdir(parents=True)
    (versions / "__init__.py").write_text("")
    for revision, down in chain.items():
        (versions / f"{revision}_x.py").write_text(f"revision = {revision!r}\ndown_revision = {down!r}\n")


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        ({"a1": None, "b2": "a1", "c3": "b2"}, "c3"),
        ({"a1": None, "b2": "a1", "c3": "a1"}, None),  # a branch: two heads
        ({"a1": None, "b2": None}, None),  # two roots
    ],
    ids=["chain", "branch", "two-roots"],
)
def test_head_revision_only_trusts_a_plain_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chain: dict[str, str | None], expected: str | None
) -> None:
    _write_versions(tmp_path, chain)
    monkeypatch.setattr(migrate, "migrations_dir", lambda: tmp_path)
    assert migrate.head_revision() == expected


def test_annotated_revision_ids_are_read_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_versions(tmp_path, {"a1": None})
    (tmp_path / "versions" / "b_x.py").write_text("revision: str = 'b2'\ndown_revision: str | None = 'a1'\n")
    monkeypatch.setattr(migrate, "migrations_dir", lambda: tmp_path)
    assert migrate.head_revision() == "b2"


def test_a_merge_revision_is_left_to_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_versions(tmp_path, {"a1": None})
    (tmp_path / "versions" / "m_x.py").write_text("revision = 'm'\ndown_revision = ('a1', 'b2')\n")
    monkeypatch.setattr(migrate, "migrations_dir", lambda: tmp_path)
    assert migrate.head_revision() is None
