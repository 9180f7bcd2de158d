"""Erasing what people said (retention, `/lukas forget`, deletions in Slack) and the conversation's participants.
Plain Core functions on a Connection, each one short transaction, so the chat service's unit runner interleaves
them with answers.

Erasing keeps the row (the ledger and the exactly-once keys need it): content '' , token_count 0, user_name
cleared, erased_at set. Batches walk the primary key (keyset), so a table of 100k rows is read once, not once
per batch. A picture drawn on request holds the person's idea in its prompt: it is erased the same way (prompt '',
revised_prompt NULL); weekly pictures hold only the persona's prompt and the theme tables, and keep theirs.
A deletion of a message Lukas has not stored leaves a tombstone (channel, ts), so a late copy is stored erased.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import ColumnElement, Connection, Update, bindparam, delete, func, select, update

from bot.images.request_logic import REQUEST_PREFIX, request_key
from bot.store.db import upsert_insert
from bot.store.models import ConversationSummary, GeneratedImage, LLMCall, Message, MessageTombstone, utcnow

# Slack redelivers an event within minutes; a tombstone kept a day covers that with room to spare.
TOMBSTONE_TTL = dt.timedelta(days=1)

# Built once (constructing and cache-keying it per answer cost more than running it).
_PARTICIPANTS = (
    select(Message.user_id)
    .where(
        Message.conversation_id
        == select(Message.conversation_id).where(Message.id == bindparam("message_id")).scalar_subquery(),
        Message.sender == "user",
        Message.user_id.is_not(None),
    )
    .distinct()
)


def participants(session: Connection, message_id: int) -> frozenset[str]:
    """Slack user ids of the people who wrote in this message's conversation (whom Lukas may @mention)."""
    return frozenset(str(user_id) for user_id in session.scalars(_PARTICIPANTS, {"message_id": message_id}))


def _unerased_requests(*where: ColumnElement[bool]) -> tuple[ColumnElement[bool], ...]:
    """Pictures drawn on request whose idea is not erased yet (weekly pictures hold no one's words)."""
    return (GeneratedImage.slot_key.startswith(REQUEST_PREFIX), GeneratedImage.erased_at.is_(None), *where)


def _erase_ideas(where: ColumnElement[bool]) -> Update:
    """Erase the idea of the matching request pictures; status, cost and ids stay."""
    return (
        update(GeneratedImage)
        .where(*_unerased_requests(where))
        .values(prompt="", revised_prompt=None, erased_at=bindparam("now"))
    )


_ERASE_ASKED_BY = _erase_ideas(GeneratedImage.requested_by == bindparam("user_id"))
_ERASE_OLDER_IDEAS = _erase_ideas(GeneratedImage.created_at < bindparam("before"))
_ERASE_REQUEST = _erase_ideas(GeneratedImage.slot_key == bindparam("key"))
_PRUNE_TOMBSTONES = delete(MessageTombstone).where(MessageTombstone.created_at < bindparam("cutoff"))


@functools.cache
def _remember_tombstone(dialect: str) -> Any:
    return upsert_insert(dialect)(MessageTombstone).on_conflict_do_nothing()


def count_for_user(session: Connection, user_id: str) -> int:
    """How many of this person's messages still hold text (picture requests included)."""
    messages = session.scalar(
        select(func.count()).where(Message.user_id == user_id, Message.sender == "user", Message.erased_at.is_(None))
    )
    pictures = session.scalar(select(func.count()).where(*_unerased_requests(GeneratedImage.requested_by == user_id)))
    return int(messages or 0) + int(pictures or 0)


def erase_user_pictures(session: Connection, user_id: str) -> int:
    """Erase the ideas of every picture this person asked for (a few a day at most: one statement). Commits."""
    erased = session.execute(_ERASE_ASKED_BY, {"user_id": user_id, "now": utcnow()}).rowcount
    session.commit()
    return int(erased or 0)


def erase_older_pictures(session: Connection, *, before: dt.datetime) -> int:
    """Erase the ideas of request pictures created before `before`. Commits."""
    erased = session.execute(_ERASE_OLDER_IDEAS, {"before": before, "now": utcnow()}).rowcount
    session.commit()
    return int(erased or 0)


def remember_deletion(session: Connection, *, channel_id: str, ts: str) -> bool:
    """A message Lukas has not stored was deleted in Slack: erase the picture it asked for (if any) and leave a
    tombstone, so a late or redelivered copy is stored erased and never answered; old tombstones go. Does not
    commit. Returns whether a picture's idea was erased. (PostgreSQL: a copy whose accept is committing in the very
    same milliseconds is missed by both sides and answered, as if the deletion had come just after it.)"""
    now = utcnow()
    erased = session.execute(_ERASE_REQUEST, {"key": request_key(channel_id=channel_id, ts=ts), "now": now}).rowcount
    session.execute(
        _remember_tombstone(session.dialect.name), {"channel_id": channel_id, "slack_ts": ts, "created_at": now}
    )
    session.execute(_PRUNE_TOMBSTONES, {"cutoff": now - TOMBSTONE_TTL})
    return bool(erased)


def _erase(session: Connection, ids: list[int]) -> int:
    if not ids:
        return 0
    session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.erased_at.is_(None))
        .values(content="", token_count=0, user_name=None, reply_text=None, erased_at=utcnow())
    )
    # A rolling summary may hold what these messages said: it goes too, and is rebuilt from what is left.
    touched = select(Message.conversation_id).where(Message.id.in_(ids)).distinct()
    session.execute(delete(ConversationSummary).where(ConversationSummary.conversation_id.in_(touched)))
    session.commit()
    return len(ids)


def erase_user_batch(session: Connection, user_id: str, *, after_id: int, batch_size: int) -> tuple[int, int]:
    """Erase up to `batch_size` of this person's messages with id > after_id. Commits.
    Returns (how many were erased, the last id looked at; 0 when done)."""
    ids = list(
        session.scalars(
            select(Message.id)
            .where(
                Message.id > after_id,
                Message.user_id == user_id,
                Message.sender == "user",
                Message.erased_at.is_(None),
            )
            .order_by(Message.id)
            .limit(batch_size)
        )
    )
    return _erase(session, ids), (ids[-1] if ids else 0)


def erase_older_batch(session: Connection, *, before: dt.datetime, after_id: int, batch_size: int) -> tuple[int, int]:
    """Erase up to `batch_size` messages (anyone's) created before `before`, with id > after_id. Commits.
    Returns (how many were erased, the last id looked at; 0 when done)."""
    ids = list(
        session.scalars(
            select(Message.id)
            .where(Message.id > after_id, Message.created_at < before, Message.erased_at.is_(None))
            .order_by(Message.id)
            .limit(batch_size)
        )
    )
    return _erase(session, ids), (ids[-1] if ids else 0)


def spent_since(session: Connection, *, start: dt.datetime) -> float:
    """Dollars on the model ledger since `start` (chat replies and captions): what the chat budget counts."""
    total = session.scalar(select(func.coalesce(func.sum(LLMCall.cost_usd), 0.0)).where(LLMCall.created_at >= start))
    return float(total or 0.0)
