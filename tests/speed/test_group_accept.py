"""Accepting many messages in one transaction (issue 17): each message is stored once, duplicates inside one
batch and against stored rows are told apart exactly as one-at-a-time accepts told them apart."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.batching import GroupWriter
from bot.chat.events_logic import IncomingMessage, classify_event
from bot.chat.limits_logic import Limit, Rules
from bot.config.guards_schema import Window
from bot.store.accept_repo import NOT_IN_THREAD, Accepted, Rejected, ToAccept, accept_messages
from bot.store.models import Conversation, Message
from bot.store.units import UnitRunner
from tests.harness import mention_event, message_event


def incoming(event: dict[str, Any], *, event_id: str, event_type: str = "message") -> ToAccept:
    decision = classify_event(
        event=event, event_type=event_type, bot_user_id="UBOT", bot_id="B0BOT", event_id=event_id, team_id="T1"
    )
    assert isinstance(decision, IncomingMessage), decision
    return ToAccept(decision, token_count=7)


async def accept(engine: AsyncEngine, batch: Sequence[ToAccept]) -> list[Accepted | Rejected]:
    runner = UnitRunner(engine)
    try:
        return await runner.run(lambda s: accept_messages(s, batch, owner="me", lease_ttl=30))
    finally:
        await asyncio.to_thread(runner.close)


async def rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        result = await connection.execute(
            select(Message.id, Message.event_id, Message.channel_id, Message.conversation_id, Message.lease_owner)
            .where(Message.sender == "user")
            .order_by(Message.id)
        )
        return list(result)


async def test_a_burst_is_stored_once_each_in_one_transaction(db_engine: AsyncEngine) -> None:
    batch = [
        incoming(message_event(text=f"hi {i}", channel=f"DG{i}", user=f"UG{i}"), event_id=f"EvG{i}") for i in range(50)
    ]
    results = await accept(db_engine, batch)
    assert all(isinstance(r, Accepted) for r in results)
    stored = await rows(db_engine)
    assert [r.event_id for r in stored] == [f"EvG{i}" for i in range(50)]
    by_event = {r.event_id: r for r in stored}
    for i, result in enumerate(results):
        assert isinstance(result, Accepted)
        assert result.message_id == by_event[f"EvG{i}"].id  # each caller gets its own row back
        assert result.conversation_id == by_event[f"EvG{i}"].conversation_id
    assert {r.lease_owner for r in stored} == {"me"}


async def test_duplicates_inside_a_batch_and_against_stored_rows(db_engine: AsyncEngine) -> None:
    first = incoming(message_event(text="hello", channel="DDUP", ts="1800000000.000100"), event_id="EvD1")
    assert isinstance((await accept(db_engine, [first]))[0], Accepted)
    mention = mention_event(text="hi", channel="CDUP", ts="1800000000.000200")
    as_message = {**mention, "type": "message"}
    batch = [
        incoming(message_event(text="hello", channel="DDUP", ts="1800000000.000100"), event_id="EvD1"),  # redelivery
        incoming(mention, event_id="EvD2", event_type="app_mention"),
        incoming(as_message, event_id="EvD3"),  # the message event that accompanies the mention: same ts
        incoming(message_event(text="again", channel="DDUP"), event_id="EvD4"),  # same DM, new message
    ]
    results = await accept(db_engine, batch)
    assert results[0] == Rejected("duplicate")
    assert isinstance(results[1], Accepted)
    assert results[2] == Rejected("duplicate")
    assert isinstance(results[3], Accepted)
    stored = await rows(db_engine)
    assert [r.event_id for r in stored] == ["EvD1", "EvD2", "EvD4"]
    assert stored[0].conversation_id == stored[2].conversation_id  # the DM's second message joins its conversation


async def test_a_follow_up_in_a_thread_lukas_is_not_in_is_not_stored(db_engine: AsyncEngine) -> None:
    mention = mention_event(text="start", channel="CTHR", ts="1800000001.000100")
    reply_in_thread = message_event(
        text="and more", channel="CTHR", ts="1800000001.000300", thread_ts="1800000001.000100"
    )
    other_thread = message_event(text="hm", channel="CTHR", ts="1800000002.000300", thread_ts="1800000002.000100")
    batch = [
        incoming(mention, event_id="EvT1", event_type="app_mention"),
        incoming(reply_in_thread, event_id="EvT2"),
        incoming(other_thread, event_id="EvT3"),
    ]
    results = await accept(db_engine, batch)
    assert isinstance(results[0], Accepted)
    assert results[2] == Rejected(NOT_IN_THREAD)
    assert [r.event_id for r in await rows(db_engine)] == [
        "EvT1",
        *(["EvT2"] if isinstance(results[1], Accepted) else []),
    ]
    async with db_engine.connect() as connection:
        threads = list(
            await connection.scalars(select(Conversation.thread_ts).where(Conversation.channel_id == "CTHR"))
        )
    assert threads == ["1800000001.000100"]


async def test_the_group_writer_batches_what_arrives_during_a_write() -> None:
    writes: list[list[int]] = []

    async def write(items: Sequence[int]) -> list[int]:
        writes.append(list(items))
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    writer: GroupWriter[int, int] = GroupWriter(write, max_batch=30)
    assert await writer.submit(1) == 10  # a lone item is written at once
    results = await asyncio.gather(*(writer.submit(i) for i in range(100)))
    assert results == [i * 10 for i in range(100)]
    assert writes[0] == [1]
    assert len(writes) <= 1 + 5  # 100 items in batches of at most 30, not 100 writes
    assert all(len(batch) <= 30 for batch in writes)
    assert sorted(item for batch in writes[1:] for item in batch) == list(range(100))


async def test_a_failed_group_write_fails_every_caller_in_it_and_the_next_write_goes_on() -> None:
    calls = 0

    async def write(items: Sequence[str]) -> list[str]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise ConnectionError("database down")
        return [item.upper() for item in items]

    writer: GroupWriter[str, str] = GroupWriter(write)
    first = asyncio.gather(writer.submit("a"), writer.submit("b"), return_exceptions=True)
    await asyncio.sleep(0)
    later = writer.submit("c")  # queued during the failing write: written by the next one
    failed, ok = await asyncio.gather(first, later)
    assert [type(e) for e in failed] == [ConnectionError, ConnectionError]
    assert ok == "C"


@pytest.mark.parametrize("kind", ["dm"])
async def test_the_intake_answers_every_message_of_a_burst(kind: str, tmp_path: Any, database_url: str) -> None:
    from tests.harness import running_lukas
    from tests.standins.openai_api import OpenAIStandIn

    llm = OpenAIStandIn(latency=0.2)
    async with llm, running_lukas(tmp_path, database_url, llm=llm) as h:
        events = [message_event(text=f"burst {i}", channel=f"DB{i}", user=f"UB{i}") for i in range(40)]
        statuses = await asyncio.gather(*(h.send(event, event_id=f"EvB{i}") for i, event in enumerate(events)))
        assert [status for status, _ in statuses] == [200] * 40
        assert len([m for m in await h.messages() if m.sender == "user"]) == 40  # all stored before their acks
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 40)
        await h.settle()
        assert sorted(c.params["channel"] for c in h.slack.calls_to("chat.postMessage")) == sorted(
            f"DB{i}" for i in range(40)
        )
        assert len(llm.chat_requests) == 40


async def test_known_conversations_are_not_looked_up_again_and_a_rolled_back_one_is_not_kept(
    db_engine: AsyncEngine,
) -> None:
    known: dict[tuple[str, str, str], int] = {}
    runner = UnitRunner(db_engine)
    looked_up: list[str] = []

    def accept_watched(batch: Sequence[ToAccept], **options: Any) -> Any:
        def work(session: Any) -> Any:
            from sqlalchemy import event

            def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                if statement.lstrip().upper().startswith("SELECT") and "FROM conversations" in statement:
                    looked_up.append(statement)

            event.listen(session, "before_cursor_execute", note)
            try:
                return accept_messages(session, batch, owner="me", lease_ttl=30, conversation_ids=known, **options)
            finally:
                event.remove(session, "before_cursor_execute", note)

        return runner.run(work)

    try:
        first = await accept_watched([incoming(message_event(text="one", channel="DKNOWN"), event_id="EvK1")])
        assert isinstance(first[0], Accepted) and list(known.values()) == [first[0].conversation_id]
        looked_up.clear()
        second = await accept_watched([incoming(message_event(text="two", channel="DKNOWN"), event_id="EvK2")])
        assert isinstance(second[0], Accepted) and second[0].conversation_id == first[0].conversation_id
        assert looked_up == []  # the conversation's id came from what this process already knew

        def judge_fails(_session: Any, _requests: Any) -> list[str]:
            raise RuntimeError("the database went away mid-transaction")

        limited = incoming(message_event(text="three", channel="DNEW"), event_id="EvK3")
        rules = Rules(
            person=Limit("p:U", Window(messages=5, window_seconds=60)), conversation_scope="", per_conversation=None
        )
        limited = ToAccept(limited.incoming, 7, rules)
        with pytest.raises(RuntimeError):
            await accept_watched([limited], judge=judge_fails)
        assert ("T1", "DNEW", "") not in known and len(known) == 1  # its conversation row was rolled back
        async with db_engine.connect() as connection:
            assert (
                await connection.execute(select(Conversation.id).where(Conversation.channel_id == "DNEW"))
            ).all() == []
    finally:
        await asyncio.to_thread(runner.close)
