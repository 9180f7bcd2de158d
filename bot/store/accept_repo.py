"""Accepting people's messages, many in one transaction (group commit).

Every message is stored before Slack's ack; when many arrive at once (a burst, or each event delivered to several
replicas) the intake writes those waiting together: one SELECT of their conversations, one INSERT of the new
conversations, one INSERT of the messages, the limits' windows (bot.store.guard_repo: one upsert that locks them,
one update; or Redis), one COMMIT. Unique keys still decide everything: `ON CONFLICT DO NOTHING` skips a row another
replica (or the same batch) stored first, and a row that was not inserted is a duplicate, exactly as the single-row
IntegrityError was. Only stored messages are judged, so a redelivery never counts twice.

A message deleted in Slack before it arrived (a tombstone, bot.store.privacy_repo) is stored erased and done, in
the same INSERT: each row's text, state and erased_at are CASE WHEN EXISTS (its tombstone), so the common case
costs no extra statement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Float,
    Integer,
    Text,
    bindparam,
    case,
    exists,
    null,
    select,
    tuple_,
    update,
)

from bot.chat.events_logic import IncomingMessage
from bot.chat.limits_logic import ANSWER, Limit, Rules
from bot.store.db import upsert_insert
from bot.store.leases import DONE, WORKING, db_now
from bot.store.models import Conversation, Message, MessageTombstone, utcnow

NOT_IN_THREAD = "not a thread Lukas is in"
DELETED_BEFORE = "deleted in Slack before it arrived"


@dataclass(frozen=True)
class Accepted:
    message_id: int
    conversation_id: int
    epoch: int = 1
    verdict: str = ANSWER  # the limits' decision (bot.chat.limits_logic), stored with the message


@dataclass(frozen=True)
class Rejected:
    reason: str  # "duplicate" | NOT_IN_THREAD | DELETED_BEFORE


@dataclass(frozen=True)
class ToAccept:
    incoming: IncomingMessage
    token_count: int
    rules: Rules | None = None  # the limit windows it is judged by (None: not judged)


Judge = Callable[[Connection, Sequence[Sequence[Limit]]], list[str]]
_SET_VERDICT = update(Message).where(Message.id == bindparam("mid")).values(verdict=bindparam("verdict"))


ConversationKey = tuple[str, str, str]
MAX_KNOWN_CONVERSATIONS = 50_000  # conversation ids a process remembers (a few MB); then it starts afresh
_SELECT_CONVERSATION_IDS = select(
    Conversation.id, Conversation.team_id, Conversation.channel_id, Conversation.thread_ts
).where(
    tuple_(Conversation.team_id, Conversation.channel_id, Conversation.thread_ts).in_(bindparam("keys", expanding=True))
)


def _key(incoming: IncomingMessage) -> ConversationKey:
    return (incoming.team_id, incoming.channel_id, incoming.conversation_thread_ts)


@functools.cache
def _inserts(dialect: str) -> tuple[Any, Any]:
    """(conversations, messages) INSERT ... ON CONFLICT DO NOTHING RETURNING, built once per dialect."""
    insert = upsert_insert(dialect)
    conversations = (
        insert(Conversation)
        .on_conflict_do_nothing()
        .returning(Conversation.id, Conversation.team_id, Conversation.channel_id, Conversation.thread_ts)
    )
    deleted = exists().where(
        MessageTombstone.channel_id == bindparam("b_channel"), MessageTombstone.slack_ts == bindparam("b_ts")
    )

    def unless_deleted(value: Any, erased: Any) -> Any:
        return case((deleted, erased), else_=value)

    messages = (
        insert(Message)
        .values(
            content=unless_deleted(bindparam("b_content", type_=Text), ""),
            token_count=unless_deleted(bindparam("b_tokens", type_=Integer), 0),
            reply_state=unless_deleted(WORKING, DONE),
            lease_until=unless_deleted(db_now(dialect) + bindparam("lease_ttl", type_=Float), null()),
            erased_at=unless_deleted(null(), bindparam("b_now", type_=DateTime(timezone=True))),
        )
        .on_conflict_do_nothing()
        .returning(Message.id, Message.channel_id, Message.slack_ts, Message.event_id, Message.erased_at)
    )
    return conversations, messages


def _conversation_ids(session: Connection, keys: set[ConversationKey]) -> dict[ConversationKey, int]:
    if not keys:
        return {}
    rows = session.execute(_SELECT_CONVERSATION_IDS, {"keys": sorted(keys)})
    return {(r.team_id, r.channel_id, r.thread_ts): r.id for r in rows}


def _create_conversations(
    session: Connection, wanted: Sequence[IncomingMessage], known: dict[ConversationKey, int]
) -> None:
    """Insert the conversations `wanted` needs that `known` lacks; adds their ids to `known`."""
    firsts: dict[ConversationKey, IncomingMessage] = {}
    for incoming in wanted:
        if _key(incoming) not in known:
            firsts.setdefault(_key(incoming), incoming)
    if not firsts:
        return
    now = utcnow()
    rows = [
        {
            "team_id": key[0],
            "channel_id": key[1],
            "thread_ts": key[2],
            "kind": incoming.kind,
            "created_at": now,
            # A mention inside a thread Lukas is not part of: its earlier messages are read after the ack.
            "thread_read_at": None if incoming.kind == "thread" and incoming.ts != key[2] else now,
        }
        for key, incoming in firsts.items()
    ]
    inserted = session.execute(_inserts(session.dialect.name)[0], rows)
    known.update({(r.team_id, r.channel_id, r.thread_ts): r.id for r in inserted})
    missing = set(firsts) - set(known)
    if missing:  # another replica created them a moment ago
        known.update(_conversation_ids(session, missing))


def accept_messages(
    session: Connection,
    batch: Sequence[ToAccept],
    *,
    owner: str | None = None,
    lease_ttl: float = 60.0,
    judge: Judge | None = None,
    conversation_ids: MutableMapping[ConversationKey, int] | None = None,
) -> list[Accepted | Rejected]:
    """Store each person's message once, leased to `owner`, in one transaction; results in `batch` order. `judge`
    (bot.chat.guards.ChatGuards.judge) gives the limits' verdicts for the stored ones, inside that transaction.
    `conversation_ids`: ids known from earlier batches (a conversation row is never deleted, so they stay true);
    only the others are looked up, and the ones found or created are added once the transaction has committed."""
    results: list[Accepted | Rejected | None] = [None] * len(batch)
    cached = conversation_ids if conversation_ids is not None else {}
    keys = {_key(item.incoming) for item in batch}
    known = {key: cached[key] for key in keys if key in cached}
    known.update(_conversation_ids(session, keys - set(known)))
    started: set[ConversationKey] = set()  # conversations an earlier message of this batch starts
    for i, item in enumerate(batch):
        key = _key(item.incoming)
        if not item.incoming.only_if_lukas_in_thread:
            started.add(key)
        elif key not in known and key not in started:  # as if accepted one after another, in batch order
            results[i] = Rejected(NOT_IN_THREAD)
    _create_conversations(session, [item.incoming for i, item in enumerate(batch) if results[i] is None], known)
    now = utcnow()
    pending = [i for i, result in enumerate(results) if result is None]
    rows = [
        {
            "lease_owner": owner,
            "lease_epoch": 1,
            "lease_ttl": lease_ttl,
            "conversation_id": known[_key(batch[i].incoming)],
            "channel_id": batch[i].incoming.channel_id,
            "slack_ts": batch[i].incoming.ts,
            "b_channel": batch[i].incoming.channel_id,
            "b_ts": batch[i].incoming.ts,
            "event_id": batch[i].incoming.event_id,
            "user_id": batch[i].incoming.user_id,
            "sender": "user",
            "b_content": batch[i].incoming.text,
            "b_tokens": batch[i].token_count,
            "b_now": now,
            "reply_claimed_at": now,
            "flagged": False,
            "created_at": now,
        }
        for i in pending
    ]
    stored = list(session.execute(_inserts(session.dialect.name)[1], rows)) if rows else []
    by_slot = {(r.channel_id, r.slack_ts): r for r in stored}
    for i in pending:
        incoming = batch[i].incoming
        row = by_slot.pop((incoming.channel_id, incoming.ts), None)
        if row is not None and row.event_id == incoming.event_id:
            accepted = Accepted(message_id=row.id, conversation_id=known[_key(incoming)])
            results[i] = accepted if row.erased_at is None else Rejected(DELETED_BEFORE)
        else:  # same event_id or same channel+ts stored before (the app_mention/message pair, a redelivery)
            if row is not None:  # a twin earlier in this batch owns the row: put it back for that one
                by_slot[(incoming.channel_id, incoming.ts)] = row
            results[i] = Rejected("duplicate")
    if judge is not None:
        _judge(session, batch, results, judge)
    session.commit()
    if conversation_ids is not None:
        if len(conversation_ids) + len(known) > MAX_KNOWN_CONVERSATIONS:
            conversation_ids.clear()
        conversation_ids.update(known)
    done = [result for result in results if result is not None]
    assert len(done) == len(batch)
    return done


def _judge(
    session: Connection, batch: Sequence[ToAccept], results: list[Accepted | Rejected | None], judge: Judge
) -> None:
    """The limits' verdicts for the newly stored messages, stored with them in the same transaction (only the rare
    "slow down"/"quiet" needs a write: NULL means answer)."""
    judged: list[tuple[int, Accepted, Rules]] = []
    for i, result in enumerate(results):
        rules = batch[i].rules
        if isinstance(result, Accepted) and rules is not None:
            judged.append((i, result, rules))
    requests = [rules.limits(result.conversation_id) for _i, result, rules in judged]
    if not any(requests):
        return
    verdicts = judge(session, requests)
    held = []
    for (i, result, _rules), verdict in zip(judged, verdicts, strict=True):
        if verdict != ANSWER:
            results[i] = replace(result, verdict=verdict)
            held.append({"mid": result.message_id, "verdict": verdict})
    if held:
        session.execute(_SET_VERDICT, held)
