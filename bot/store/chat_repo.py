"""Chat queries. The unique constraints do the deduplication; these functions only phrase the questions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat.events_logic import IncomingMessage
from bot.chat.history_logic import StoredMessage
from bot.store.models import Conversation, LLMCall, Message, utcnow

PENDING, WORKING, POSTING, DONE = "pending", "working", "posting", "done"


@dataclass(frozen=True)
class Accepted:
    message_id: int
    conversation_id: int


@dataclass(frozen=True)
class Rejected:
    reason: str  # "duplicate" | "not a thread Lukas is in"


async def _find_conversation(session: AsyncSession, incoming: IncomingMessage) -> Conversation | None:
    return await session.scalar(
        select(Conversation).where(
            Conversation.team_id == incoming.team_id,
            Conversation.channel_id == incoming.channel_id,
            Conversation.thread_ts == incoming.conversation_thread_ts,
        )
    )


async def _is_duplicate(session: AsyncSession, incoming: IncomingMessage) -> bool:
    clauses = [and_(Message.channel_id == incoming.channel_id, Message.slack_ts == incoming.ts)]
    if incoming.event_id:
        clauses.append(Message.event_id == incoming.event_id)
    return await session.scalar(select(Message.id).where(or_(*clauses)).limit(1)) is not None


async def accept_message(session: AsyncSession, incoming: IncomingMessage) -> Accepted | Rejected:
    """Store a person's message once. Commits. Safe against concurrent replicas (unique keys decide)."""
    if await _is_duplicate(session, incoming):
        return Rejected("duplicate")
    conversation = await _find_conversation(session, incoming)
    if conversation is None:
        if incoming.only_if_lukas_in_thread:
            return Rejected("not a thread Lukas is in")
        try:
            async with session.begin_nested():
                conversation = Conversation(
                    team_id=incoming.team_id,
                    channel_id=incoming.channel_id,
                    thread_ts=incoming.conversation_thread_ts,
                    kind=incoming.kind,
                )
                session.add(conversation)
        except IntegrityError:
            conversation = await _find_conversation(session, incoming)
            if conversation is None:  # pragma: no cover - the winner's row must exist
                raise
    message = Message(
        conversation_id=conversation.id,
        channel_id=incoming.channel_id,
        slack_ts=incoming.ts,
        event_id=incoming.event_id,
        user_id=incoming.user_id,
        sender="user",
        content=incoming.text,
        reply_state=PENDING,
    )
    session.add(message)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return Rejected("duplicate")
    return Accepted(message_id=message.id, conversation_id=conversation.id)


async def claim(session: AsyncSession, message_id: int, *, stale_before: dt.datetime | None = None) -> bool:
    """Take the message for answering: pending, or working but abandoned before `stale_before`. Commits."""
    condition = Message.reply_state == PENDING
    if stale_before is not None:
        condition = or_(condition, and_(Message.reply_state == WORKING, Message.reply_claimed_at < stale_before))
    result = await session.execute(
        update(Message)
        .where(Message.id == message_id, condition)
        .values(reply_state=WORKING, reply_claimed_at=utcnow())
    )
    await session.commit()
    return result.rowcount == 1


async def unanswered(
    session: AsyncSession, *, pending_before: dt.datetime, stale_before: dt.datetime, limit: int = 100
) -> list[int]:
    """Messages the sweeper should (re)try: pending for a while, or claimed by a worker that vanished."""
    rows = await session.scalars(
        select(Message.id)
        .where(
            or_(
                and_(Message.reply_state == PENDING, Message.created_at < pending_before),
                and_(Message.reply_state == WORKING, Message.reply_claimed_at < stale_before),
            )
        )
        .order_by(Message.id)
        .limit(limit)
    )
    return list(rows)


async def load_for_reply(session: AsyncSession, message_id: int) -> tuple[Message, Conversation]:
    message = await session.get(Message, message_id)
    if message is None:
        raise LookupError(f"message {message_id} not found")
    conversation = await session.get(Conversation, message.conversation_id)
    assert conversation is not None
    return message, conversation


async def recent_messages(
    session: AsyncSession, *, conversation_id: int, up_to_id: int, limit: int
) -> list[StoredMessage]:
    """The newest `limit` usable messages up to and including `up_to_id` (fallbacks and flagged excluded)."""
    rows = await session.execute(
        select(Message.id, Message.sender, Message.content, Message.user_name, Message.token_count, Message.flagged)
        .where(
            Message.conversation_id == conversation_id,
            Message.id <= up_to_id,
            Message.sender != "fallback",
            Message.flagged.is_(False),
        )
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return [
        StoredMessage(
            id=r.id,
            sender=r.sender,
            content=r.content,
            user_name=r.user_name,
            token_count=r.token_count,
            flagged=r.flagged,
        )
        for r in rows
    ]


async def store_counts(session: AsyncSession, counts: dict[int, int]) -> None:
    for message_id, count in counts.items():
        await session.execute(update(Message).where(Message.id == message_id).values(token_count=count))


async def set_state(session: AsyncSession, message_id: int, state: str, **values: object) -> None:
    await session.execute(update(Message).where(Message.id == message_id).values(reply_state=state, **values))
    await session.commit()


async def record_reply(
    session: AsyncSession,
    *,
    question: Message,
    conversation: Conversation,
    sender: str,
    text: str,
    slack_ts: str | None,
    token_count: int | None,
    llm_call: LLMCall | None,
) -> None:
    """Store Lukas's reply (or fallback) and the ledger row, and mark the question done. Commits."""
    session.add(
        Message(
            conversation_id=conversation.id,
            channel_id=conversation.channel_id,
            slack_ts=slack_ts,
            sender=sender,
            content=text,
            token_count=token_count,
            reply_to_id=question.id,
        )
    )
    if sender == "fallback":
        await session.execute(update(Conversation).where(Conversation.id == conversation.id).values(last_fallback=text))
    if llm_call is not None:
        session.add(llm_call)
    await session.execute(update(Message).where(Message.id == question.id).values(reply_state=DONE))
    await session.commit()
