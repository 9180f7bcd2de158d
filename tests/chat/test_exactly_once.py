"""Exactly once across replicas and restarts, and the ack never waits for the model."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import delete, update

from bot.store.models import Message
from tests.harness import Harness, message_event, running_lukas
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


async def test_two_replicas_receiving_the_same_event_reply_once(tmp_path: Path, database_url: str) -> None:
    slack, llm = SlackStandIn(), OpenAIStandIn(latency=0.2)
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm) as a,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm) as b,
    ):
        events = [message_event(text=f"hello {i}", channel=f"D0DM{i}") for i in range(10)]
        sends = []
        for i, event in enumerate(events):
            for replica, retry in ((a, None), (b, 1)):
                sends.append(replica.send(event, event_id=f"EvR{i}", retry_num=retry))
        statuses = await asyncio.gather(*sends)
        assert all(status == 200 for status, _ in statuses)
        await a.wait_until(lambda: len(slack.calls_to("chat.postMessage")) >= 10)
        await a.settle()
        await b.settle()
        channels = sorted(c.params["channel"] for c in slack.calls_to("chat.postMessage"))
        assert channels == sorted(f"D0DM{i}" for i in range(10))
        assert len(llm.chat_requests) == 10
        assert len([m for m in await a.messages() if m.sender == "user"]) == 10


async def test_ack_does_not_wait_for_the_model(tmp_path: Path, database_url: str) -> None:
    llm = OpenAIStandIn(latency=1.5)
    async with llm, running_lukas(tmp_path, database_url, llm=llm) as h:
        status, _ = await h.send(message_event(text="take your time"))
        assert status == 200
        assert h.slack.calls_to("chat.postMessage") == []  # acked while the model was still thinking
        rows = await h.messages()
        assert [r.sender for r in rows] == ["user"]  # ...and the message was already safe in the database
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)


async def _expire_leases(h: Harness) -> None:
    """As if every lease had run out long ago (past the posting grace too)."""
    async with h.lukas.services.sessions() as session:
        await session.execute(update(Message).where(Message.sender == "user").values(lease_until=0.0))
        await session.commit()


async def test_a_restart_mid_reply_answers_once(tmp_path: Path, database_url: str) -> None:
    slack, llm = SlackStandIn(), OpenAIStandIn(latency=5)
    async with slack, llm:
        async with running_lukas(tmp_path / "first", database_url, slack=slack, llm=llm) as first:
            await first.send(message_event(text="before the restart"))
            await first.wait_until(lambda: len(llm.chat_requests) == 1)
            chat = first.lukas.services.chat
            chat._taking = False  # as if killed: the answer vanishes and its lease is never handed back
            chat.keeper._held.clear()
            chat._tasks.pop(next(iter(chat._tasks))).cancel()
            await _expire_leases(first)
        assert slack.calls_to("chat.postMessage") == []
        llm.latency = 0
        async with running_lukas(tmp_path / "second", database_url, slack=slack, llm=llm) as second:
            await second.wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 1)
            await second.settle()
            assert await second.lukas.services.chat.sweep_once() == 0
            assert len(slack.calls_to("chat.postMessage")) == 1
            assert [m.reply_state for m in await second.messages() if m.sender == "user"] == ["done"]


async def test_a_reply_already_in_slack_is_recorded_not_posted_again(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        await h.send(message_event(text="hi"))
        await h.settle()
        async with h.lukas.services.sessions() as session:  # as if killed after the post, before recording it
            await session.execute(delete(Message).where(Message.sender == "bot"))
            await session.execute(update(Message).where(Message.sender == "user").values(reply_state="posting"))
            await session.commit()
        await _expire_leases(h)
        assert await h.lukas.services.chat.sweep_once() == 1
        await h.settle()
        assert len(h.slack.calls_to("chat.postMessage")) == 1  # found by its metadata in Slack, not posted again
        assert len(h.slack.calls_to("conversations.history")) == 1
        rows = await h.messages()
        assert [m.reply_state for m in rows if m.sender == "user"] == ["done"]
        assert [m.content for m in rows if m.sender == "bot"] == h.slack.posted_texts()


async def test_sweeper_answers_messages_accepted_while_the_answer_task_died(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        chat = h.lukas.services.chat
        original = chat.schedule
        chat.schedule = lambda message_id, **_kw: False  # the answer task never starts (the process was killed)
        await h.send(message_event(text="lost?"))
        chat.schedule = original
        chat.keeper._held.clear()
        assert h.slack.calls_to("chat.postMessage") == []
        assert await chat.sweep_once() == 0  # the lease is still running: nobody takes it over yet
        await _expire_leases(h)
        assert await chat.sweep_once() == 1
        await h.settle()
        assert len(h.slack.calls_to("chat.postMessage")) == 1
