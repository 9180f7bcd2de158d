"""Memory queries (issue 15): a thread's context messages, and the rolling summary with the range it covers.

Plain blocking functions on a Core Connection, run as units of work (bot.store.units) like chat_repo's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, func, insert, or_, select, update

from bot.chat.history_logic import StoredMessage
from bot.chat.memory_logic import Boundary
from bot.chat.thread_logic import ThreadMessage
from bot.store.chat_repo import stored_messages
from bot.store.models import Conversation, ConversationSummary, LLMCall, Message, utcnow

# How many covered messages a rebuild looks at (the newest; the logic then keeps what fits its input budget).
REBUILD_ROWS = 400


@dataclass(frozen=True)
class SummaryRow:
    text: str
    token_count: int
    boundary: Boundary
    first_message_id: int
    message_count: int
    built_from: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class MemoryState:
    summary: SummaryRow | None
    uncovered: list[StoredMessage]  # usable, not erased, after the summary's boundary (prompt order not guaranteed)
    erased_since_built: bool  # a covered message was erased after the summary read its messages
    read_at: dt.datetime  # when these rows were read: the new summary's built_from


# ----- thread context
def store_thread_context(
    session: Connection,
    *,
    conversation_id: int,
    channel_id: str,
    messages: Sequence[tuple[ThreadMessage, int]],
) -> int:
    """Mark the thread read and store its earlier messages as context (once: a second reader stores nothing;
    messages already stored, e.g. Lukas's own replies, are skipped). Commits. Returns how many were stored."""
    now = utcnow()
    claimed = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.thread_read_at.is_(None))
        .values(thread_read_at=now)
    )
    if claimed.rowcount != 1:
        session.rollback()
        return 0
    wanted = [m.ts for m, _tokens in messages]
    existing = (
        set(
            session.scalars(
                select(Message.slack_ts).where(Message.channel_id == channel_id, Message.slack_ts.in_(wanted))
            )
        )
        if wanted
        else set()
    )
    rows = [
        {
            "conversation_id": conversation_id,
            "channel_id": channel_id,
            "slack_ts": message.ts,
            "user_id": message.user_id,
            "user_name": message.display_name,
            "sender": message.sender,
            "content": message.text,
            "token_count": tokens,
            "flagged": False,
            "context": True,
            "created_at": now,
        }
        for message, tokens in messages
        if message.ts not in existing
    ]
    if rows:
        session.execute(insert(Message), rows)
    session.commit()
    return len(rows)


# ----- the summary
def _covered(boundary: Boundary) -> ColumnElement[bool]:
    if boundary.through_context:
        return and_(Message.context.is_(True), Message.id <= boundary.through_message_id)
    return or_(Message.context.is_(True), Message.id <= boundary.through_message_id)


def _usable() -> ColumnElement[bool]:
    return and_(Message.sender != "fallback", Message.flagged.is_(False), Message.erased_at.is_(None))


_COLUMNS = (Message.id, Message.sender, Message.content, Message.user_name, Message.token_count, Message.context)


def summary_row(session: Connection, conversation_id: int) -> SummaryRow | None:
    row = session.execute(
        select(ConversationSummary).where(ConversationSummary.conversation_id == conversation_id)
    ).first()
    if row is None:
        return None
    s = row[0] if not hasattr(row, "text") else row
    return SummaryRow(
        text=s.text,
        token_count=s.token_count,
        boundary=Boundary(through_message_id=s.through_message_id, through_context=s.through_context),
        first_message_id=s.first_message_id,
        message_count=s.message_count,
        built_from=_aware(s.built_from),
        updated_at=_aware(s.updated_at),
    )


def load_state(session: Connection, conversation_id: int, *, max_rows: int) -> MemoryState:
    read_at = utcnow()
    summary = summary_row(session, conversation_id)
    mine = Message.conversation_id == conversation_id
    query = select(*_COLUMNS).where(mine, _usable())
    erased = False
    if summary is not None:
        query = query.where(~_covered(summary.boundary))
        erased = bool(
            session.scalar(
                select(
                    exists().where(
                        mine,
                        Message.erased_at.is_not(None),
                        Message.erased_at >= summary.built_from,
                        _covered(summary.boundary),
                    )
                )
            )
        )
    rows = session.execute(query.order_by(Message.context.desc(), Message.id.desc()).limit(max_rows))
    return MemoryState(summary=summary, uncovered=stored_messages(rows), erased_since_built=erased, read_at=read_at)


def load_covered(session: Connection, conversation_id: int, boundary: Boundary) -> list[StoredMessage]:
    """The newest covered messages still usable (for a rebuild)."""
    rows = session.execute(
        select(*_COLUMNS)
        .where(Message.conversation_id == conversation_id, _usable(), _covered(boundary))
        .order_by(Message.context.asc(), Message.id.desc())
        .limit(REBUILD_ROWS)
    )
    return stored_messages(rows)


def save_summary(
    session: Connection,
    *,
    conversation_id: int,
    text: str,
    token_count: int,
    boundary: Boundary,
    first_message_id: int,
    message_count: int,
    built_from: dt.datetime,
    expected_updated_at: dt.datetime | None,
) -> str:
    """Write the summary unless the world moved on: "saved", "erased meanwhile" (a message it covers was erased
    while it was written: it must not be kept), "superseded" (another writer changed it first) or "gone". Commits."""
    if session.scalar(select(Conversation.id).where(Conversation.id == conversation_id)) is None:
        return "gone"
    if session.scalar(
        select(
            exists().where(
                Message.conversation_id == conversation_id,
                Message.erased_at.is_not(None),
                Message.erased_at >= built_from,
                _covered(boundary),
            )
        )
    ):
        session.rollback()
        return "erased meanwhile"
    now = utcnow()
    values = {
        "text": text,
        "token_count": token_count,
        "through_message_id": boundary.through_message_id,
        "through_context": boundary.through_context,
        "first_message_id": first_message_id,
        "message_count": message_count,
        "built_from": built_from,
        "updated_at": now,
    }
    if expected_updated_at is None:
        if session.scalar(select(ConversationSummary.id).where(ConversationSummary.conversation_id == conversation_id)):
            session.rollback()
            return "superseded"
        session.execute(insert(ConversationSummary).values(conversation_id=conversation_id, **values))
    else:
        result = session.execute(
            update(ConversationSummary)
            .where(
                ConversationSummary.conversation_id == conversation_id,
                ConversationSummary.updated_at == expected_updated_at,
            )
            .values(**values)
        )
        if result.rowcount != 1:
            session.rollback()
            return "superseded"
    session.commit()
    return "saved"


def delete_summary(session: Connection, conversation_id: int) -> None:
    session.execute(delete(ConversationSummary).where(ConversationSummary.conversation_id == conversation_id))
    session.commit()


def record_calls(session: Connection, rows: list[dict[str, object]]) -> None:
    if rows:
        now = utcnow()
        session.execute(insert(LLMCall), [{**row, "created_at": now} for row in rows])
        session.commit()


def count_summaries(session: Connection) -> int:
    return int(session.scalar(select(func.count()).select_from(ConversationSummary)) or 0)


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; the rest of Lukas compares aware UTC ones."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
