"""Chat queries. The unique constraints do the deduplication; these functions only phrase the questions.

Plain blocking functions on a Core Connection: the chat service runs each as one unit of work on a worker thread
(bot.store.units), in short Core statements. Four short transactions per message: accept (bot.store.accept_repo,
many messages at once), load, mark posting, record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, String, and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from bot.chat.history_logic import StoredMessage
from bot.chat.limits_logic import ANSWER
from bot.store import privacy_repo
from bot.store.leases import DONE, FAILED, FENCED, POSTING, WORKING, Lease, fence_params
from bot.store.models import Conversation, ConversationSummary, LLMCall, Message, utcnow

# A person's message is stored already claimed ("working", under a lease of the worker that accepted it); a
# worker that dies stops renewing its lease, and once it expires any replica takes the message over
# (bot.store.leases). Every later write is fenced: it names the lease's owner and epoch.
__all__ = ["DONE", "FAILED", "POSTING", "WORKING", "Lease"]


@dataclass(frozen=True)
class ConversationInfo:
    id: int
    channel_id: str
    thread_ts: str
    last_fallback: str | None
    kind: str = "dm"
    thread_read: bool = True  # False: a thread Lukas was just mentioned in, whose earlier messages are not read yet


@dataclass(frozen=True)
class SummaryInfo:
    """The conversation's rolling summary, as the answer's prompt needs it."""

    text: str
    token_count: int
    through_message_id: int
    through_context: bool


@dataclass(frozen=True)
class ClaimedMessage:
    """A person's message this worker now owns, with what answering it needs."""

    id: int
    event_id: str | None
    user_id: str | None
    user_name: str | None
    conversation: ConversationInfo
    history: list[StoredMessage]  # up to and including this message, plus a thread's context messages (any order)
    history_limit: int  # at most this many own messages (and as many context ones) were loaded into `history`
    ts: str | None = None  # the message's own Slack ts (where a thinking status goes in a DM's main timeline)
    team_id: str = ""
    erased: bool = False  # deleted in Slack (or forgotten) before Lukas answered: not answered at all
    summary: SummaryInfo | None = None
    has_summary: bool = False  # a summary row exists, even one that is stale (summary is None then)
    reply_text: str | None = None  # a reply whose post was interrupted (bot.store.models.Message.reply_text)
    verdict: str = ANSWER  # the limits' decision at accept (bot.chat.limits_logic)


@dataclass(frozen=True)
class Change:
    """What applying an edit or deletion did: "updated", "erased", "unchanged", "not stored" or "remembered"."""

    outcome: str
    sender: str | None = None


# Statements are built once: constructing and cache-keying them on every call cost more CPU than running them.
_INSERT_MESSAGE = insert(Message).returning(Message.id)
_UPDATE_MESSAGE = update(Message).where(Message.id == bindparam("b_message_id"))
_UPDATE_LAST_FALLBACK = (
    update(Conversation)
    .where(Conversation.id == bindparam("b_conversation_id"))
    .values(last_fallback=bindparam("text"))
)
_INSERT_LLM_CALL = insert(LLMCall)
_MARK_POSTING = (
    update(Message)
    .where(FENCED)
    .values(
        reply_state=POSTING,
        user_name=func.coalesce(bindparam("user_name", type_=String), Message.user_name),
        reply_text=bindparam("reply_text"),
    )
)
_KEEP_REPLY_TEXT = update(Message).where(FENCED).values(reply_text=bindparam("reply_text"))
_MARK_POSTING_FLAGGED = _MARK_POSTING.values(flagged=True, flag_reason=bindparam("flag_reason"))
_CLOSE_QUESTION = (
    update(Message).where(FENCED).values(reply_state=bindparam("state"), lease_until=None, reply_text=None)
)
_ERASED = aliased(Message)
# A covered message erased after the summary was built: the summary must not be used until it is rebuilt
# (an index on messages(conversation_id, erased_at) keeps this a seek).
_SUMMARY_STALE = (
    exists()
    .where(
        _ERASED.conversation_id == Message.conversation_id,
        _ERASED.erased_at >= ConversationSummary.built_from,
        or_(
            and_(_ERASED.context.is_(True), _ERASED.id <= ConversationSummary.through_message_id),
            and_(ConversationSummary.through_context.is_(False), _ERASED.id <= ConversationSummary.through_message_id),
            and_(_ERASED.context.is_(True), ConversationSummary.through_context.is_(False)),
        ),
    )
    .correlate(Message, ConversationSummary)
)
_SELECT_QUESTION = (
    select(
        Message.conversation_id,
        Message.event_id,
        Message.user_id,
        Message.user_name,
        Message.slack_ts,
        Message.erased_at,
        Message.reply_text,
        Message.verdict,
        Conversation.team_id,
        Conversation.channel_id,
        Conversation.thread_ts,
        Conversation.last_fallback,
        Conversation.kind,
        Conversation.thread_read_at,
        ConversationSummary.text.label("summary_text"),
        ConversationSummary.token_count.label("summary_tokens"),
        ConversationSummary.through_message_id,
        ConversationSummary.through_context,
        _SUMMARY_STALE.label("summary_stale"),
    )
    .join(Conversation, Conversation.id == Message.conversation_id)
    .outerjoin(ConversationSummary, ConversationSummary.conversation_id == Message.conversation_id)
    .where(Message.id == bindparam("message_id"))
)
_SELECT_HISTORY = (
    select(Message.id, Message.sender, Message.content, Message.user_name, Message.token_count)
    .where(
        Message.conversation_id == bindparam("conversation_id"),
        Message.id <= bindparam("message_id"),
        Message.sender != "fallback",
        Message.flagged.is_(False),
        Message.context.is_(False),
        Message.erased_at.is_(None),  # deleted, forgotten or past retention: never sent to a model again
    )
    .order_by(Message.id.desc())
    .limit(bindparam("limit", type_=Integer))
)
# A thread's context messages (read on the first mention): they precede the conversation's own messages.
_SELECT_CONTEXT = (
    select(Message.id, Message.sender, Message.content, Message.user_name, Message.token_count)
    .where(
        Message.conversation_id == bindparam("conversation_id"),
        Message.context.is_(True),
        Message.flagged.is_(False),
        Message.erased_at.is_(None),
    )
    .order_by(Message.id.desc())
    .limit(bindparam("limit", type_=Integer))
)


def stored_messages(rows: Iterable[Any], *, context: bool | None = None) -> list[StoredMessage]:
    """Rows of (id, sender, content, user_name, token_count[, context]) as the chat core's StoredMessage."""
    return [
        StoredMessage(
            id=r.id,
            sender=r.sender,
            content=r.content,
            user_name=r.user_name,
            token_count=r.token_count,
            context=bool(r.context) if context is None else context,
        )
        for r in rows
    ]


def load_claimed(session: Connection, message_id: int, *, history_size: int) -> ClaimedMessage:
    """What answering needs: the conversation and its newest usable messages up to this one."""
    question = session.execute(_SELECT_QUESTION, {"message_id": message_id}).one()
    rows = session.execute(
        _SELECT_HISTORY,
        {"conversation_id": question.conversation_id, "message_id": message_id, "limit": history_size},
    )
    history = stored_messages(rows, context=False)
    if question.kind == "thread":
        context = session.execute(_SELECT_CONTEXT, {"conversation_id": question.conversation_id, "limit": history_size})
        history += stored_messages(context, context=True)
    conversation = ConversationInfo(
        id=question.conversation_id,
        channel_id=question.channel_id,
        thread_ts=question.thread_ts,
        last_fallback=question.last_fallback,
        kind=question.kind,
        thread_read=question.thread_read_at is not None,
    )
    summary = (
        SummaryInfo(
            text=question.summary_text,
            token_count=question.summary_tokens,
            through_message_id=question.through_message_id,
            through_context=question.through_context,
        )
        if question.summary_text is not None and not question.summary_stale
        else None
    )
    return ClaimedMessage(
        id=message_id,
        event_id=question.event_id,
        user_id=question.user_id,
        user_name=question.user_name,
        conversation=conversation,
        history=history,
        ts=question.slack_ts,
        team_id=question.team_id,
        summary=summary,
        has_summary=question.summary_text is not None,
        erased=question.erased_at is not None,
        reply_text=question.reply_text,
        verdict=question.verdict or ANSWER,
        history_limit=history_size,
    )


_SELECT_BY_TS = select(Message.id, Message.conversation_id, Message.sender, Message.content, Message.erased_at).where(
    Message.channel_id == bindparam("channel_id"), Message.slack_ts == bindparam("ts")
)


def apply_edit(session: Connection, *, channel_id: str, ts: str, text: str, token_count: int) -> Change:
    """A person edited a stored message: keep the new text (and its token count). Commits."""
    row = session.execute(_SELECT_BY_TS, {"channel_id": channel_id, "ts": ts}).first()
    if row is None:
        return Change("not stored")
    if row.erased_at is not None or row.sender != "user":
        return Change("unchanged", row.sender)
    if row.content == text:
        return Change("unchanged", row.sender)  # Slack also sends message_changed for unfurls
    session.execute(
        _UPDATE_MESSAGE, {"b_message_id": row.id, "content": text, "token_count": token_count, "edited_at": utcnow()}
    )
    _drop_summary(session, row.conversation_id)  # it may quote the old text: rebuilt from the new
    session.commit()
    return Change("updated", row.sender)


def erase_message(session: Connection, *, channel_id: str, ts: str) -> Change:
    """A message was deleted in Slack: erase its text, keep the row for the ledger. Commits. One not stored (yet)
    leaves a tombstone, and the idea of a picture it asked for is erased ("erased" then, else "remembered")."""
    row = session.execute(_SELECT_BY_TS, {"channel_id": channel_id, "ts": ts}).first()
    if row is None:
        picture = privacy_repo.remember_deletion(session, channel_id=channel_id, ts=ts)
        session.commit()
        return Change("erased" if picture else "remembered")
    if row.erased_at is not None:
        return Change("unchanged", row.sender)
    session.execute(_UPDATE_MESSAGE, {"b_message_id": row.id, "content": "", "token_count": 0, "erased_at": utcnow()})
    _drop_summary(session, row.conversation_id)  # it may hold what the message said: rebuilt from what is left
    session.commit()
    return Change("erased", row.sender)


def _drop_summary(session: Connection, conversation_id: int) -> None:
    session.execute(delete(ConversationSummary).where(ConversationSummary.conversation_id == conversation_id))


def mark_posting(
    session: Connection,
    lease: Lease,
    *,
    owner: str,
    user_name: str | None,
    flag_reason: str | None,
    counts: dict[int, int],
    reply_text: str | None = None,
) -> bool:
    """Last write before Slack: from here on the reply may be in Slack, so it is never posted blindly again.
    `reply_text` (the reply, when already known) lets a take-over post the parts Slack lacks.
    Fenced: False (and nothing written) when this writer no longer holds the lease. Commits."""
    params = {
        **fence_params(lease, owner=owner, state=WORKING),
        "user_name": user_name or None,
        "reply_text": reply_text,
    }
    if flag_reason is None:
        result = session.execute(_MARK_POSTING, params)
    else:
        result = session.execute(_MARK_POSTING_FLAGGED, {**params, "flag_reason": flag_reason})
    if result.rowcount != 1:
        session.rollback()
        return False
    for other_id, count in counts.items():
        session.execute(_UPDATE_MESSAGE, {"b_message_id": other_id, "token_count": count})
    session.commit()
    return True


def keep_reply_text(session: Connection, lease: Lease, *, owner: str, text: str) -> bool:
    """A streamed reply about to continue in further messages: keep its text, so a take-over posts the parts Slack
    lacks. Fenced: False (and nothing written) when this writer no longer holds the lease. Commits."""
    result = session.execute(_KEEP_REPLY_TEXT, {**fence_params(lease, owner=owner, state=POSTING), "reply_text": text})
    if result.rowcount != 1:
        session.rollback()
        return False
    session.commit()
    return True


def record_reply(
    session: Connection,
    *,
    lease: Lease,
    owner: str,
    question_id: int,
    conversation: ConversationInfo,
    sender: str,
    text: str | None,
    slack_ts: str | None,
    token_count: int | None,
    llm_call: dict[str, object] | list[dict[str, object]] | None,
    state: str = DONE,
    from_state: str = POSTING,
) -> bool:
    """Store Lukas's reply (or fallback) and the ledger row(s: one per provider tried), and close the question.
    Fenced: False (and nothing written) when this writer no longer holds the lease. Commits."""
    now = utcnow()
    closed = session.execute(_CLOSE_QUESTION, {**fence_params(lease, owner=owner, state=from_state), "state": state})
    if closed.rowcount != 1:
        session.rollback()
        return False
    if text is not None:
        session.execute(
            _INSERT_MESSAGE,
            {
                "conversation_id": conversation.id,
                "channel_id": conversation.channel_id,
                "slack_ts": slack_ts,
                "sender": sender,
                "content": text,
                "token_count": token_count,
                "reply_to_id": question_id,
                "flagged": False,
                "created_at": now,
            },
        )
        if sender == "fallback":
            session.execute(_UPDATE_LAST_FALLBACK, {"b_conversation_id": conversation.id, "text": text})
    ledger = [llm_call] if isinstance(llm_call, dict) else list(llm_call or ())
    if ledger:
        session.execute(_INSERT_LLM_CALL, [{**row, "created_at": now} for row in ledger])
    session.commit()
    return True
