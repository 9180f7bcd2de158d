"""Erasing message text (retention, `/lukas forget`) and the conversation's participants. Plain Core functions on a
Connection, each one short transaction, so the chat service's unit runner interleaves them with answers.

Erasing keeps the row (the ledger and the exactly-once keys need it): content '' , token_count 0, user_name
cleared, erased_at set. Batches walk the primary key (keyset), so a table of 100k rows is read once, not once
per batch.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, bindparam, delete, func, select, update

from bot.store.models import ConversationSummary, LLMCall, Message, utcnow

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


def count_for_user(session: Connection, user_id: str) -> int:
    """How many of this person's messages still hold text."""
    return int(
        session.scalar(
            select(func.count()).where(
                Message.user_id == user_id, Message.sender == "user", Message.erased_at.is_(None)
            )
        )
        or 0
    )


def _erase(session: Connection, ids: list[int]) -> int:
    if not ids:
        return 0
    session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.erased_at.is_(None))
        .values(content="", token_count=0, user_name=None, erased_at=utcnow())
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
