"""Database tables. Uniqueness constraints here are what make "exactly once" hold across replicas."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Conversation(Base):
    """A DM channel, or a channel thread. DMs use thread_ts '' so the unique key never holds a NULL."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "thread_ts", name="uq_conversations_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), default="")
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32), default="")
    kind: Mapped[str] = mapped_column(String(16))  # "dm" | "thread"
    last_fallback: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the thread's earlier messages were read (or found unreadable) on Lukas's first mention: never again.
    thread_read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    messages: Mapped[list[Message]] = relationship(back_populates="conversation")


class Message(Base):
    """One message in a conversation: a person's, Lukas's reply, or a fallback line.

    `reply_state` on user messages drives exactly-once replies: pending -> working (claimed by one worker)
    -> posting -> done. A sweeper re-runs `pending` ones and stale `working` ones (their worker died before
    posting); a `posting` one may already be in Slack, so it is never posted again.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel_id", "slack_ts", name="uq_messages_channel_ts"),
        Index("ix_messages_conversation_recent", "conversation_id", "id"),
        Index("ix_messages_reply_state", "reply_state"),
        Index("ix_messages_conversation_erased", "conversation_id", "erased_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    event_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    user_id: Mapped[str | None] = mapped_column(String(32), default=None)
    user_name: Mapped[str | None] = mapped_column(String(255), default=None)
    sender: Mapped[str] = mapped_column(String(16))  # "user" | "bot" | "fallback"
    content: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int | None] = mapped_column(Integer, default=None)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(Text, default=None)
    reply_state: Mapped[str | None] = mapped_column(String(16), default=None)
    reply_claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Set when the person edits the message in Slack (content then holds the new text).
    edited_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Set when the text is erased (deleted in Slack, forgotten on request, past retention): content is ''
    # and the row stays only for the ledger; erased messages never reach a model again.
    erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The lease on answering this message (bot.store.leases): who holds it, a fencing epoch that grows with every
    # claim, and its expiry in seconds since the epoch on the database's clock.
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_until: Mapped[float | None] = mapped_column(Float, default=None)
    # A thread's earlier message, read when Lukas was first mentioned there: context for the prompt (it precedes
    # the conversation's own messages whatever its id), never a message to answer.
    context: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The reply while it is being posted (set with `posting`, cleared once recorded): a replica taking over an
    # interrupted multi-part post posts exactly the parts Slack lacks.
    reply_text: Mapped[str | None] = mapped_column(Text, default=None)
    # The limits' decision, made once at accept (bot.chat.limits_logic): NULL = answer, else "slow down" or "quiet".
    # Stored with the message so a handed-back or taken-over message keeps it and is never judged again.
    verdict: Mapped[str | None] = mapped_column(String(16), default=None)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class ConversationSummary(Base):
    """The rolling summary of what fell out of a conversation's window (issue 15).

    It covers the conversation's usable messages up to a boundary in prompt order (context messages first, then
    by id): every context message with id <= through_message_id when `through_context`, else every context message
    and every own message with id <= through_message_id. `built_from` is when those messages were read: a covered
    message erased after it means the summary must be rebuilt without it.
    """

    __tablename__ = "conversation_summaries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), unique=True)
    text: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)  # of the prompt message "Earlier in this conversation: ..."
    through_message_id: Mapped[int] = mapped_column(Integer)
    through_context: Mapped[bool] = mapped_column(Boolean)
    first_message_id: Mapped[int] = mapped_column(Integer)
    message_count: Mapped[int] = mapped_column(Integer)
    built_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GeneratedImage(Base):
    """One picture attempt (weekly, or drawn on request). `slot_key` is unique: claiming it stops double posting."""

    __tablename__ = "generated_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_key: Mapped[str] = mapped_column(String(64), unique=True)
    prompt: Mapped[str] = mapped_column(Text, default="")
    revised_prompt: Mapped[str | None] = mapped_column(Text, default=None)
    theme: Mapped[str | None] = mapped_column(String(64), default=None)
    occasion: Mapped[str | None] = mapped_column(String(64), default=None)
    model: Mapped[str] = mapped_column(String(64), default="")
    size: Mapped[str] = mapped_column(String(16), default="")
    quality: Mapped[str] = mapped_column(String(16), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    local_path: Mapped[str | None] = mapped_column(Text, default=None)
    upload_state: Mapped[str | None] = mapped_column(String(16), default=None)
    slack_file_id: Mapped[str | None] = mapped_column(String(64), default=None)
    slack_permalink: Mapped[str | None] = mapped_column(Text, default=None)
    channel_id: Mapped[str | None] = mapped_column(Text, default=None)
    # Pictures drawn on request (slot_key "request:..."): who asked, and the thread the picture goes to.
    requested_by: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    thread_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # A request's prompt holds the person's idea: set when it is erased (forgotten, past retention, or the asking
    # message deleted in Slack); prompt is '' and revised_prompt NULL, the row stays for the ledger.
    erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class MessageTombstone(Base):
    """A message deleted in Slack before Lukas stored it (a deletion can overtake a redelivered message): when the
    message arrives later it is stored erased and not answered. No text; pruned after a day."""

    __tablename__ = "message_tombstones"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slack_ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class PictureFile(Base):
    """The bytes of a paid picture that some channel (or the requester's thread) does not have yet. In the database,
    not on a replica's disk, so every replica can post it and backups cover it; deleted once posted, or given up
    after KEEP_UNPOSTED (bot.images.delivery)."""

    __tablename__ = "picture_files"

    image_id: Mapped[int] = mapped_column(ForeignKey("generated_images.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # PostgreSQL bytea, SQLite BLOB; ~1-3 MB a picture
    mime: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class PictureQuota(Base):
    """Pictures on request per person and day (the day in images.schedule.timezone). The row of user_id '*' and
    day 'YYYY-MM' is locked by every claim, so the quota and the monthly budget hold under concurrency."""

    __tablename__ = "picture_quotas"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class ChannelNote(Base):
    """A thread in a channel where Lukas is not enabled that already got his short note (once per thread)."""

    __tablename__ = "channel_notes"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "thread_ts", name="uq_channel_notes_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), default="")
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LLMCall(Base):
    """The cost ledger: one row per request to a chat model (including ones that failed)."""

    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), default=None, index=True
    )
    purpose: Mapped[str] = mapped_column(String(16), default="chat")  # chat | caption | summary
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float, default=0.0)  # NULL: unknown (the model had no price)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    outcome: Mapped[str] = mapped_column(String(32))  # ok | rate_limited | server_error | auth | ...
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class MetricsSnapshot(Base):
    """The latest contract and breaker metrics of one running Lukas (they live in its memory), saved every
    ~30 s and at shutdown so `lukas stats`, a separate process, can show them. One row per instance."""

    __tablename__ = "metrics_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(128), unique=True)
    version: Mapped[str] = mapped_column(String(32), default="")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    taken_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    payload: Mapped[str] = mapped_column(Text, default="{}")  # JSON: contract metrics and breaker states


class Instance(Base):
    """A running Lukas: its id (the owner named on its leases) and its heartbeat, on the database's clock."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)


class ImageBudgetMonth(Base):
    """Dollars reserved or spent on pictures in one budget month: one row, reserved from with a conditional update
    so two concurrent runs can never both pass the budget."""

    __tablename__ = "image_budget_months"

    month: Mapped[str] = mapped_column(String(16), primary_key=True)
    reserved_usd: Mapped[float] = mapped_column(Float)


class GuardWindow(Base):
    """One limit window (bot.chat.limits_logic): a person's or a conversation's answered messages in one scope.
    Its row is locked while a message is judged, so replicas never answer past the limit together."""

    __tablename__ = "guard_windows"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    hits: Mapped[str] = mapped_column(Text, default="")  # seconds since the epoch, space-separated, oldest first
    warned_at: Mapped[float | None] = mapped_column(Float, default=None)
    touched_at: Mapped[float] = mapped_column(Float, default=0.0, index=True)  # a row untouched for a day is empty


class AdminNotice(Base):
    """An admin DM that went out (or is going out): its key is claimed before sending, so concurrent messages,
    replicas and restarts send it once (the month's budget DM; a model-not-found DM once per alert interval)."""

    __tablename__ = "admin_notices"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
