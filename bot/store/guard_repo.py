"""Guard state every replica sees, in the database: limit windows (judged inside the accept transaction, so a
message's verdict costs no extra round trip of its own) and admin notices claimed once."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete

from bot.chat.limits_logic import ANSWER, Limit, WindowState, judge_all
from bot.store.db import upsert_insert
from bot.store.models import AdminNotice, GuardWindow, utcnow

STALE_SECONDS = 86_400.0  # the longest window (guards_schema.Window): a row untouched this long is empty


@functools.cache
def _statements(dialect: str) -> tuple[Any, Any]:
    """(lock, write), built once per dialect; run with a list of rows, SQLAlchemy sends each as one statement
    (insertmanyvalues), so judging costs two round trips whatever the number of windows.

    lock: INSERT ... ON CONFLICT DO UPDATE (of touched_at) RETURNING creates missing rows and locks every row until
    the commit, so a concurrent judge of the same window (another replica) waits, then sees this one's answer.
    write: the same upsert, storing the new hits and warning."""
    insert = upsert_insert(dialect)(GuardWindow)
    lock = insert.on_conflict_do_update(
        index_elements=[GuardWindow.key], set_={"touched_at": insert.excluded.touched_at}
    ).returning(GuardWindow.key, GuardWindow.hits, GuardWindow.warned_at)
    write = insert.on_conflict_do_update(
        index_elements=[GuardWindow.key],
        set_={"hits": insert.excluded.hits, "warned_at": insert.excluded.warned_at},
    )
    return lock, write


def _decode(hits: str) -> tuple[float, ...]:
    return tuple(float(t) for t in hits.split())


def _encode(hits: tuple[float, ...]) -> str:
    return " ".join(f"{t:.3f}" for t in hits)


def judge(session: Connection, requests: Sequence[Sequence[Limit]], *, now: float) -> list[str]:
    """Verdicts for messages judged together, in order, inside the caller's transaction (which commits them)."""
    keys = sorted({limit.key for limits in requests for limit in limits})  # one lock order for every replica
    if not keys:
        return [ANSWER] * len(requests)
    lock, write = _statements(session.dialect.name)
    rows = session.execute(lock, [{"key": key, "hits": "", "touched_at": now} for key in keys])
    states = {row.key: WindowState(_decode(row.hits), row.warned_at) for row in rows}
    verdicts, changed = judge_all(requests=requests, states=states, now=now)
    if changed:
        session.execute(
            write,
            [
                {"key": key, "hits": _encode(state.hits), "warned_at": state.warned_at, "touched_at": now}
                for key, state in changed.items()
            ],
        )
    return verdicts


def forget_stale_windows(session: Connection, *, now: float) -> int:
    """Drop windows nobody used for a day (they are empty), in the caller's transaction; the table stays as small as
    the set of people active that day."""
    deleted = session.execute(delete(GuardWindow).where(GuardWindow.touched_at < now - STALE_SECONDS)).rowcount
    return int(deleted or 0)


def claim_notice(session: Connection, *, key: str, kind: str) -> bool:
    """True for the one caller (of any replica, ever) that may send the admin notice `key`."""
    insert = upsert_insert(session.dialect.name)(AdminNotice)
    claimed = session.execute(
        insert.values(key=key, kind=kind, created_at=utcnow()).on_conflict_do_nothing().returning(AdminNotice.key)
    ).first()
    session.commit()
    return claimed is not None


def release_notice(session: Connection, *, key: str) -> None:
    """The notice could not be sent to anyone: let a later attempt claim it again."""
    session.execute(delete(AdminNotice).where(AdminNotice.key == key))
    session.commit()
