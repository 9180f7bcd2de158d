"""`lukas backup PATH` / `lukas restore PATH`: every table as JSON lines in one zip file, plus the kept pictures.

A logical dump through SQLAlchemy, not pg_dump or sqlite3's .backup: one format for both databases (a SQLite
backup restores into PostgreSQL and back, e.g. when moving to replicas), no pg_dump whose version must match the
server's, nothing more to install in the image, and new tables (picture bytes, ...) are covered without a change
here. It is consistent while Lukas runs: a SQLite file is first copied with SQLite's online backup API, PostgreSQL
is read in one REPEATABLE READ transaction. Restore migrates the empty database to the backup's revision, loads the
rows in one transaction, then migrates to this Lukas's newest revision (so data steps of newer migrations run).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

import bot
from bot.errors import BackupError, DatabaseUnavailableError
from bot.store import migrate
from bot.store.backup_logic import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PICTURES_FOLDER,
    SKIPPED_TABLES,
    TABLES_FOLDER,
    check_manifest,
    decode_value,
    encode_value,
    picture_member,
    refuse_non_empty,
)
from bot.store.db import redacted, resolve_url
from bot.store.models import Base

BATCH_ROWS = 1000


@dataclass(frozen=True)
class Summary:
    revision: str
    rows: dict[str, int]
    pictures: int

    def line(self) -> str:
        rows, tables = sum(self.rows.values()), len(self.rows)
        return f"{rows} rows in {tables} tables, {self.pictures} kept picture(s), revision {self.revision}"


def backup(url: str | None, path: Path, *, pictures_dir: Path | None) -> Summary:
    """Write the backup to `path` (replaced atomically; readable by its owner only, it holds conversations)."""
    resolved = resolve_url(url)
    partial = path.with_name(path.name + ".part")
    try:
        with _snapshot(resolved) as connection:
            revision = _revision(connection, resolved)
            with _private_file(partial) as file, zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
                rows = {table.name: _dump_table(connection, table, archive) for table in _tables(connection)}
                pictures = _pack_pictures(pictures_dir, archive)
                manifest = {
                    "format": FORMAT,
                    "version": FORMAT_VERSION,
                    "revision": revision,
                    "lukas": bot.__version__,
                    "database": make_url(resolved).get_backend_name(),
                    "created_at": dt.datetime.now(dt.UTC).isoformat(),
                    "tables": rows,
                    "pictures": pictures,
                }
                archive.writestr(MANIFEST, json.dumps(manifest, indent=2))
        os.replace(partial, path)
    except (SQLAlchemyError, sqlite3.Error) as exc:
        raise _cannot("back up", resolved, exc) from None
    finally:
        partial.unlink(missing_ok=True)
    return Summary(revision=revision, rows=rows, pictures=pictures)


def restore(url: str | None, path: Path, *, pictures_dir: Path | None, force: bool) -> Summary:
    """Load a backup into an empty database (or, with force, one whose Lukas tables are dropped first)."""
    resolved = resolve_url(url)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BackupError(f"cannot read the backup {path}: {getattr(exc, 'strerror', None) or exc}") from None
    with archive:
        try:
            manifest = json.loads(archive.read(MANIFEST))
        except (KeyError, ValueError):
            manifest = {}
        revision = check_manifest(manifest=manifest, known_revisions=set(migrate.migration_chain() or ()))
        try:
            _clear(resolved, names=set(Base.metadata.tables) | set(manifest.get("tables", ())), force=force)
            migrate.upgrade(resolved, revision)
            rows = _load(resolved, archive)
        except SQLAlchemyError as exc:
            raise _cannot("restore into", resolved, exc) from None
        migrate.upgrade(resolved)
        pictures = _unpack_pictures(archive, pictures_dir)
    return Summary(revision=revision, rows=rows, pictures=pictures)


# ----- reading


@contextlib.contextmanager
def _snapshot(resolved: str) -> Iterator[Connection]:
    """A connection that sees one consistent moment of the database while Lukas keeps writing."""
    parsed = make_url(resolved)
    if parsed.get_backend_name() != "sqlite":
        engine = sa.create_engine(resolved)
        try:
            connection = engine.connect().execution_options(isolation_level="REPEATABLE READ")
            with connection, connection.begin():
                yield connection
        finally:
            engine.dispose()
        return
    source = Path(parsed.database or "")
    if not source.is_file():
        raise BackupError(f"there is no SQLite database at {source}: check DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="lukas-backup-") as folder:
        copy = Path(folder) / "snapshot.db"
        live, snapshot = sqlite3.connect(source, timeout=10), sqlite3.connect(copy)
        with contextlib.closing(live), contextlib.closing(snapshot):
            live.backup(snapshot)
        engine = sa.create_engine(f"sqlite+pysqlite:///{copy}")
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()


def _revision(connection: Connection, resolved: str) -> str:
    if not sa.inspect(connection).has_table("alembic_version"):
        raise BackupError(f"the database at {redacted(resolved)} has no Lukas tables: nothing to back up")
    return str(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one())


def _tables(connection: Connection) -> list[sa.Table]:
    """Every table but alembic_version, parents before children (the order restore inserts them in)."""
    metadata = sa.MetaData()
    metadata.reflect(connection)
    return [table for table in metadata.sorted_tables if table.name not in SKIPPED_TABLES]


def _dump_table(connection: Connection, table: sa.Table, archive: zipfile.ZipFile) -> int:
    count = 0
    query = sa.select(table).order_by(*table.primary_key.columns)
    with archive.open(f"{TABLES_FOLDER}{table.name}.jsonl", "w") as member:
        for row in connection.execution_options(yield_per=BATCH_ROWS).execute(query).mappings():
            line = json.dumps({name: encode_value(value) for name, value in row.items()}, ensure_ascii=False)
            member.write(line.encode() + b"\n")
            count += 1
    return count


def _pack_pictures(pictures_dir: Path | None, archive: zipfile.ZipFile) -> int:
    if pictures_dir is None or not pictures_dir.is_dir():
        return 0
    files = [p for p in sorted(pictures_dir.rglob("*")) if p.is_file() and not p.name.endswith(".part")]
    for file in files:
        archive.write(file, PICTURES_FOLDER + file.relative_to(pictures_dir).as_posix())
    return len(files)


@contextlib.contextmanager
def _private_file(path: Path) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        yield file


# ----- writing


def _sync_engine(resolved: str) -> Engine:
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite":
        return sa.create_engine(parsed.set(drivername="sqlite+pysqlite"), connect_args={"timeout": 10})
    return sa.create_engine(resolved)


def _clear(resolved: str, *, names: set[str], force: bool) -> None:
    """Refuse a database holding rows (unless forced); drop the Lukas tables there are, so that the schema can be
    built at the backup's revision (they are empty, or the admin asked for it)."""
    engine = _sync_engine(resolved)
    try:
        with engine.begin() as connection:
            present = set(sa.inspect(connection).get_table_names()) & (names | SKIPPED_TABLES)
            metadata = sa.MetaData()
            metadata.reflect(connection, only=sorted(present))
            rows = {
                table.name: int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
                for table in metadata.sorted_tables
                if table.name not in SKIPPED_TABLES
            }
            refuse_non_empty(rows=rows, force=force, where=redacted(resolved))
            metadata.drop_all(connection)
    finally:
        engine.dispose()


def _load(resolved: str, archive: zipfile.ZipFile) -> dict[str, int]:
    members = set(archive.namelist())
    engine = _sync_engine(resolved)
    try:
        with engine.begin() as connection:
            rows = {}
            for table in _tables(connection):
                name = f"{TABLES_FOLDER}{table.name}.jsonl"
                rows[table.name] = _load_table(connection, table, archive) if name in members else 0
            if connection.dialect.name == "postgresql":
                _reset_sequences(connection, list(rows))
    finally:
        engine.dispose()
    return rows


def _load_table(connection: Connection, table: sa.Table, archive: zipfile.ZipFile) -> int:
    count, batch = 0, []
    with archive.open(f"{TABLES_FOLDER}{table.name}.jsonl") as member:
        for line in member:
            row = {name: decode_value(value) for name, value in json.loads(line).items()}
            unknown = set(row) - set(table.columns.keys())
            if unknown:
                raise BackupError(f"the backup's {table.name} rows have columns this database lacks: {sorted(unknown)}")
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                connection.execute(table.insert(), batch)
                count, batch = count + len(batch), []
    if batch:
        connection.execute(table.insert(), batch)
    return count + len(batch)


def _reset_sequences(connection: Connection, tables: list[str]) -> None:
    """Rows came with their ids: move each serial column's sequence past them, or the next INSERT collides."""
    for name in tables:
        table = sa.Table(name, sa.MetaData(), autoload_with=connection)
        for column in table.primary_key.columns:
            sequence = connection.execute(
                sa.text("SELECT pg_get_serial_sequence(:table, :column)"), {"table": name, "column": column.name}
            ).scalar()
            if sequence is None:
                continue
            highest = connection.execute(sa.select(sa.func.max(column))).scalar()
            connection.execute(
                sa.text("SELECT setval(CAST(:sequence AS regclass), :value, :called)"),
                {"sequence": sequence, "value": highest or 1, "called": highest is not None},
            )


def _unpack_pictures(archive: zipfile.ZipFile, pictures_dir: Path | None) -> int:
    members = [(info, picture_member(info.filename)) for info in archive.infolist()]
    pictures = [(info, relative) for info, relative in members if relative is not None]
    if not pictures:
        return 0
    if pictures_dir is None:
        raise BackupError("the backup holds kept pictures but there is no data directory to put them in")
    for info, relative in pictures:
        target = pictures_dir.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(archive.read(info))
        os.replace(partial, target)
    return len(pictures)


def _cannot(action: str, resolved: str, exc: BaseException) -> DatabaseUnavailableError:
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return DatabaseUnavailableError(f"cannot {action} the database at {redacted(resolved)}: {reason}")
