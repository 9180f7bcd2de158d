"""A deletion can overtake the message it deletes (Slack redelivers the message later): it leaves a tombstone, and
the message is then stored erased and never answered."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from bot.chat.events_logic import IncomingMessage
from bot.store import chat_repo
from bot.store.accept_repo import DELETED_BEFORE, Accepted, Rejected, ToAccept, accept_messages
from bot.store.models import Base, Conversation, Message, MessageTombstone
from bot.store.privacy_repo import TOMBSTONE_TTL
from tests.fidelity.test_edits_and_deletions import deleted
from tests.harness import message_event, new_ts, running_lukas

SECRET = "my salary is 81,500 and I am leaving in March"


async def test_a_message_deleted_before_it_arrives_is_stored_erased_and_never_answered(
    tmp_path: Path, database_url: str
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        ts = new_ts()
        assert (await h.send(deleted(channel="D0DM", ts=ts)))[0] == 200
        late = message_event(text=SECRET, ts=ts)
        assert (await h.send(late, event_id="EvLATE"))[0] == 200
        assert (await h.send(late, event_id="EvLATE", retry_num=1))[0] == 200  # and Slack's redelivery of it
        await h.settle()
        assert h.slack.calls_to("chat.postMessage") == [] and h.llm.chat_requests == []
        (row,) = await h.messages()
        assert (row.slack_ts, row.content, row.token_count, row.reply_state) == (ts, "", 0, "done")
        assert row.erased_at is not None and row.lease_until is None

        await h.send(message_event(text="hello again"))  # the conversation goes on, without the deleted words
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
        await h.settle()
        assert "81,500" not in str(h.llm.chat_requests[0].body["messages"])


async def _run(engine: AsyncEngine, work):  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:
        return await connection.run_sync(work)


async def test_a_tombstone_holds_no_text_and_old_ones_are_pruned(db_engine: AsyncEngine) -> None:
    old = dt.datetime.now(dt.UTC) - TOMBSTONE_TTL - dt.timedelta(minutes=1)
    async with db_engine.begin() as connection:
        await connection.execute(insert(MessageTombstone).values(channel_id="C1", slack_ts="1.000001", created_at=old))
    for _ in range(2):  # twice: the second deletion of the same message is no error
        change = await _run(db_engine, lambda s: chat_repo.erase_message(s, channel_id="C1", ts="1800000000.000002"))
        assert change.outcome == "remembered"
    async with db_engine.connect() as connection:
        rows = (await connection.execute(select(MessageTombstone.channel_id, MessageTombstone.slack_ts))).all()
    assert [tuple(r) for r in rows] == [("C1", "1800000000.000002")]  # the day-old one is gone
    assert set(MessageTombstone.__table__.columns.keys()) == {"channel_id", "slack_ts", "created_at"}


@cache
def _memory_db() -> Engine:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    return engine


def _incoming(channel: str, ts: str, text: str) -> IncomingMessage:
    return IncomingMessage(
        team_id="T1", channel_id=channel, user_id="U0ANNA", text=text, ts=ts, conversation_thread_ts="",
        reply_thread_ts=None, kind="dm", event_id=f"Ev{channel}{ts}", only_if_lukas_in_thread=False,
    )  # fmt: skip


# Where each message goes: the same ts in the other channel is another message.
SLOTS = [(channel, n) for channel in ("D1", "D2") for n in range(1, 5)]
# (text, deleted in Slack before it arrived), one message per slot
MESSAGES = st.lists(st.tuples(st.text(min_size=1, max_size=12), st.booleans()), min_size=1, max_size=len(SLOTS))


def _ts(n: int) -> str:
    return f"1800000000.{n:06d}"


@given(drawn=MESSAGES, slots=st.permutations(SLOTS))
def test_the_words_of_a_message_deleted_before_it_arrives_are_never_stored_nor_answered(
    drawn: list[tuple[str, bool]], slots: list[tuple[str, int]]
) -> None:
    messages = [(channel, n, text, gone) for (channel, n), (text, gone) in zip(slots, drawn, strict=False)]
    now = dt.datetime.now(dt.UTC)
    tombstones = [{"channel_id": c, "slack_ts": _ts(n), "created_at": now} for c, n, _t, gone in messages if gone]
    with _memory_db().connect() as session:
        for table in (Message, Conversation, MessageTombstone):
            session.execute(delete(table))
        if tombstones:  # what erase_message leaves for a message not stored yet
            session.execute(insert(MessageTombstone), tombstones)
        batch = [ToAccept(_incoming(channel, _ts(n), text), len(text)) for channel, n, text, _gone in messages]
        results = accept_messages(session, batch, owner="me")
        stored = {(r.channel_id, r.slack_ts): r for r in session.execute(select(Message))}
    assert len(stored) == len(messages)
    for (channel, n, text, gone), result in zip(messages, results, strict=True):
        row = stored[(channel, _ts(n))]
        if gone:
            assert result == Rejected(DELETED_BEFORE)  # not scheduled: never answered
            assert (row.content, row.token_count, row.reply_state, row.lease_until) == ("", 0, "done", None)
            assert row.erased_at is not None
        else:
            assert isinstance(result, Accepted) and result.message_id == row.id
            assert (row.content, row.reply_state, row.erased_at) == (text, "working", None)
