"""Revisions derived from the migration files (never hard-coded: new migrations arrive all the time), and a copy of
this code's migrations without the newest one: "the Lukas one release older", as far as the schema goes."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.store import migrate


def newest_and_previous() -> tuple[str, str]:
    chain = migrate.migration_chain()
    head = migrate.head_revision()
    assert chain is not None and head is not None, "the migrations are not one plain chain"
    previous = chain[head]
    assert previous is not None, "only one migration: nothing to upgrade across"
    return head, previous


def migration_file(revision: str) -> Path:
    for path in (migrate.migrations_dir() / "versions").glob("*.py"):
        if migrate._module_constants(path, ("revision",)).get("revision") == revision:
            return path
    raise AssertionError(f"no migration file has revision {revision!r}")


def migrations_without_newest(folder: Path) -> Path:
    """A copy of the migrations folder minus the newest migration (point migrate.migrations_dir at it)."""
    head, _ = newest_and_previous()
    copy = folder / "migrations"
    shutil.copytree(migrate.migrations_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / migration_file(head).name).unlink()
    return copy
