"""Pure parts of `lukas backup` / `lukas restore`: how values travel as JSON, what a backup file must say about
itself, whether a database may be restored into, and which picture paths are safe to unpack."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Collection, Mapping
from pathlib import PurePosixPath
from typing import Any

from bot.errors import BackupError

FORMAT = "lukas-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TABLES_FOLDER = "tables/"
PICTURES_FOLDER = "pictures/"
# alembic_version travels as the manifest's "revision": restore migrates to it before loading the rows. The
# others are what a started Lukas writes by itself (heartbeats, metrics): not data, and no reason to call a
# database that Lukas once started on "not empty".
SKIPPED_TABLES = frozenset({"alembic_version", "instances", "metrics_snapshots"})


def encode_value(value: Any) -> Any:
    """A column value as JSON. Tagged objects keep types JSON lacks; datetimes travel in UTC (SQLite stores
    Lukas's naive UTC times, PostgreSQL returns them in the session's time zone)."""
    if isinstance(value, dt.datetime):
        moment = value.astimezone(dt.UTC) if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return {"$datetime": moment.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict):
        return {"$json": value}
    return value


def decode_value(value: Any) -> Any:
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((tag, payload),) = value.items()
    if tag == "$datetime":
        return dt.datetime.fromisoformat(payload)
    if tag == "$date":
        return dt.date.fromisoformat(payload)
    if tag == "$bytes":
        return base64.b64decode(payload)
    if tag == "$decimal":
        return decimal.Decimal(payload)
    if tag == "$json":
        return payload
    return value


def check_manifest(*, manifest: Mapping[str, Any], known_revisions: Collection[str]) -> str:
    """The backup's schema revision, once the file is known to be a Lukas backup this Lukas can read."""
    if manifest.get("format") != FORMAT:
        raise BackupError(
            "this file is not a Lukas backup (no lukas-backup manifest.json); pick the file `lukas backup` wrote"
        )
    if manifest.get("version") != FORMAT_VERSION:
        raise BackupError(
            f"this backup has format version {manifest.get('version')!r}, this Lukas reads version {FORMAT_VERSION}; "
            "restore it with the Lukas version that made it"
        )
    revision = manifest.get("revision")
    if not isinstance(revision, str) or revision not in known_revisions:
        raise BackupError(
            f"the backup was made at database revision {revision!r}, which this Lukas does not know (a newer Lukas "
            "made it); restore it with that version or a newer one"
        )
    return revision


def refuse_non_empty(*, rows: Mapping[str, int], force: bool, where: str) -> None:
    """Restore goes into an empty database only; --force drops what is there (the admin asked for it)."""
    filled = {table: count for table, count in rows.items() if count}
    if filled and not force:
        listing = ", ".join(f"{table} ({count})" for table, count in sorted(filled.items()))
        raise BackupError(
            f"the database at {where} is not empty: {listing} rows. Restore into a new, empty database "
            "(create one, or delete the SQLite file), or pass --force to drop every Lukas table in it first"
        )


def picture_member(name: str) -> PurePosixPath | None:
    """The path below the pictures folder for a zip member, or None when it is not a picture or would escape it."""
    if not name.startswith(PICTURES_FOLDER) or name.endswith("/"):
        return None
    relative = PurePosixPath(name[len(PICTURES_FOLDER) :])
    if relative.is_absolute() or ".." in relative.parts or not relative.parts or "\\" in name:
        return None
    return relative
