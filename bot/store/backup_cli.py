"""`lukas backup PATH` and `lukas restore PATH` (bot/store/backup.py does the work; docs/quickstart.md, "Backups")."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bot.errors import ConfigError


def register(commands: Any) -> None:
    backup = commands.add_parser(
        "backup",
        help="write the database and the kept pictures to one file (safe while Lukas runs)",
        description="Every table of $DATABASE_URL as JSON lines, plus the kept pictures, in one zip file.",
    )
    backup.add_argument("path", type=Path, help="the backup file to write, e.g. lukas-2026-12-04.zip")
    _common(backup)
    backup.set_defaults(handler=cmd_backup)

    restore = commands.add_parser(
        "restore",
        help="load a backup into an empty database (then `lukas run` carries on from it)",
        description="Load a `lukas backup` file into $DATABASE_URL, which must be empty, and migrate it to this "
        "Lukas's newest revision. SQLite and PostgreSQL backups restore into either.",
    )
    restore.add_argument("path", type=Path, help="a file written by `lukas backup`")
    restore.add_argument(
        "--force", action="store_true", help="drop every Lukas table in the database first (its rows are lost)"
    )
    _common(restore)
    restore.set_defaults(handler=cmd_restore)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="config file, for images.storage_dir (default: $LUKAS_CONFIG)")
    parser.add_argument("--database-url", default=None, help=argparse.SUPPRESS)


def pictures_dir(args: argparse.Namespace) -> Path:
    """Where kept pictures live: images.storage_dir under the data directory (as bot/images/delivery.py has it)."""
    from bot.config.loader import default_config_path, read_raw_config
    from bot.settings import resolve_data_dir

    url = args.database_url or os.environ.get("DATABASE_URL")
    data_dir = resolve_data_dir(env=os.environ, database_url=url)
    try:
        images = read_raw_config(args.config or default_config_path()).get("images") or {}
    except ConfigError:
        images = {}  # no readable config: the default folder
    directory = Path(str(images.get("storage_dir") or "images")).expanduser()
    return directory if directory.is_absolute() else data_dir / directory


def cmd_backup(args: argparse.Namespace) -> int:
    from bot.store.backup import backup

    summary = backup(args.database_url, args.path, pictures_dir=pictures_dir(args))
    print(f"backed up {summary.line()} to {args.path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from bot.store.backup import restore
    from bot.store.db import redacted, resolve_url

    summary = restore(args.database_url, args.path, pictures_dir=pictures_dir(args), force=args.force)
    print(f"restored {summary.line()} into {redacted(resolve_url(args.database_url))}; now at the newest revision")
    return 0
