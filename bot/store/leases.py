"""Leases on answering a message, with fencing. Plain blocking functions on a Core Connection (bot.store.units).

A lease is (owner, epoch, until): the instance id of the Lukas answering, a number that grows with every claim,
and an expiry in seconds since the epoch **on the database's clock** (so replicas with skewed or jumping clocks
still agree on who holds what). Every write after the claim names owner and epoch; when another replica has taken
the message over, the write changes nothing and the writer stops.

- `working` with an expired lease: the worker vanished before anything reached Slack; any replica takes it over.
- `posting` with a lease expired by more than the posting grace: the worker vanished while posting; the replica
  taking it over first looks in Slack for the reply (message metadata names the question) before answering again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, Float, and_, bindparam, cast, delete, func, literal_column, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from bot.store.db import upsert_insert
from bot.store.models import Instance, Message, utcnow

WORKING, POSTING, DONE, FAILED = "working", "posting", "done", "failed"


@dataclass(frozen=True)
class Lease:
    message_id: int
    epoch: int
    state: str = WORKING  # the state the message was in when this lease was taken


def db_now(dialect: str) -> ColumnElement[float]:
    """Seconds since the epoch on the database server's clock (never this process's clock)."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", func.clock_timestamp()), Float)
    return cast(literal_column("(julianday('now') - 2440587.5) * 86400.0"), Float)


def _now(session: Connection) -> ColumnElement[float]:
    return db_now(session.dialect.name)


def clock(session: Connection) -> float:
    """The database's clock now (for tests and status)."""
    return float(session.scalar(select(_now(session))) or 0.0)


def _claimable(
    session: Connection, *, owner: str, posting_grace: float, foreign_before: dt.datetime | None
) -> ColumnElement[bool]:
    """Working with an expired lease, or posting with a lease expired past the grace. With `foreign_before` (a
    single-process SQLite starting up: the previous process is certainly gone) every other owner's claim made
    before that moment counts too."""
    now = _now(session)
    expired = or_(Message.lease_until.is_(None), Message.lease_until < now)
    expired_posting = or_(Message.lease_until.is_(None), Message.lease_until < now - posting_grace)
    if foreign_before is not None:
        foreign = and_(
            or_(Message.lease_owner.is_(None), Message.lease_owner != owner),
            Message.reply_claimed_at < foreign_before,
        )
        expired = or_(expired, foreign)
        expired_posting = or_(expired_posting, foreign)
    return or_(
        and_(Message.reply_state == WORKING, expired),
        and_(Message.reply_state == POSTING, expired_posting),
    )


def claimable(
    session: Connection,
    *,
    owner: str,
    posting_grace: float,
    foreign_before: dt.datetime | None = None,
    limit: int = 100,
) -> list[int]:
    """Messages whose worker vanished (their lease ran out): the sweeper takes them over."""
    where = _claimable(session, owner=owner, posting_grace=posting_grace, foreign_before=foreign_before)
    rows = session.scalars(
        select(Message.id).where(Message.reply_state.in_((WORKING, POSTING)), where).order_by(Message.id).limit(limit)
    )
    return list(rows)


# The condition every write after the claim carries: this writer still holds this lease. Built once with bound
# parameters (fence_params fills them): building and cache-keying a fresh condition per write cost more CPU than
# running the statement.
FENCED = and_(
    Message.id == bindparam("f_message_id"),
    Message.lease_owner == bindparam("f_owner"),
    Message.lease_epoch == bindparam("f_epoch"),
    Message.reply_state == bindparam("f_state"),
)


def fence_params(lease: Lease, *, owner: str, state: str) -> dict[str, object]:
    return {"f_message_id": lease.message_id, "f_owner": owner, "f_epoch": lease.epoch, "f_state": state}


_REOPEN = update(Message).where(FENCED).values(reply_state=WORKING)
_RELEASE = update(Message).where(FENCED).values(lease_owner=None, lease_until=None)


def take_over(
    session: Connection,
    message_id: int,
    *,
    owner: str,
    ttl: float,
    posting_grace: float,
    foreign_before: dt.datetime | None = None,
) -> Lease | None:
    """Take an abandoned message's lease (one replica wins: the update is conditional). Commits."""
    where = _claimable(session, owner=owner, posting_grace=posting_grace, foreign_before=foreign_before)
    row = session.execute(
        update(Message)
        .where(Message.id == message_id, where)
        .values(
            lease_owner=owner,
            lease_epoch=Message.lease_epoch + 1,
            lease_until=_now(session) + ttl,
            reply_claimed_at=utcnow(),
        )
        .returning(Message.lease_epoch, Message.reply_state)
    ).one_or_none()
    session.commit()
    return None if row is None else Lease(message_id, row.lease_epoch, row.reply_state)


def reopen(session: Connection, lease: Lease, *, owner: str) -> bool:
    """A `posting` message whose reply is not in Slack goes back to `working` under the same lease. Commits."""
    result = session.execute(_REOPEN, fence_params(lease, owner=owner, state=POSTING))
    session.commit()
    return result.rowcount == 1


def renew(session: Connection, *, owner: str, held: dict[int, int], ttl: float, host: str) -> set[int]:
    """Extend every lease this instance still holds and beat its heart; returns the ids still held. Commits."""
    now = _now(session)
    kept: set[int] = set()
    if held:
        rows = session.execute(
            update(Message)
            .where(
                Message.id.in_(list(held)),
                Message.lease_owner == owner,
                Message.reply_state.in_((WORKING, POSTING)),
            )
            .values(lease_until=now + ttl)
            .returning(Message.id, Message.lease_epoch)
        )
        kept = {row.id for row in rows if held.get(row.id) == row.lease_epoch}
    beat(session, owner=owner, host=host)
    session.commit()
    return kept


def beat(session: Connection, *, owner: str, host: str) -> None:
    now = clock(session)
    statement = upsert_insert(session.dialect.name)(Instance).values(
        id=owner, host=host[:255], started_at=now, heartbeat_at=now
    )
    session.execute(statement.on_conflict_do_update(index_elements=[Instance.id], set_={"heartbeat_at": now}))


def release(session: Connection, *, owner: str, held: dict[int, int]) -> list[int]:
    """Hand unfinished answers back (shutdown): their leases expire now, so any replica takes them over at its
    next sweep. Only `working` ones: a `posting` one may already be in Slack. Commits."""
    released: list[int] = []
    for message_id, epoch in held.items():
        result = session.execute(_RELEASE, fence_params(Lease(message_id, epoch), owner=owner, state=WORKING))
        if result.rowcount == 1:
            released.append(message_id)
    session.execute(delete(Instance).where(Instance.id == owner))
    session.commit()
    return released


def stuck_counts(session: Connection, *, posting_grace: float) -> dict[str, int]:
    """Messages stuck in `posting` past the grace, and `failed` ones (for /metrics and /lukas status)."""
    now = _now(session)
    stuck_posting = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.reply_state == POSTING,
            or_(Message.lease_until.is_(None), Message.lease_until < now - posting_grace),
        )
    )
    failed = session.scalar(select(func.count()).select_from(Message).where(Message.reply_state == FAILED))
    return {"posting": int(stuck_posting or 0), "failed": int(failed or 0)}


def live_instances(session: Connection, *, within: float) -> list[str]:
    now = clock(session)
    return list(session.scalars(select(Instance.id).where(Instance.heartbeat_at >= now - within).order_by(Instance.id)))
