"""Exactly once for streamed and multi-part replies (issue 22): a streamed reply names its question in its metadata
(chat.stopStream), so a take-over finds it; every part of a long reply is numbered (a stream's overflow continues
after the stream's own part 0), and a take-over of a post interrupted midway posts only the parts Slack lacks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.store import chat_repo
from tests.harness import Harness, mention_event, message_event, new_ts, running_lukas
from tests.providers.standins import StreamingLLM
from tests.replicas.helpers import FAST_LEASES, expire_leases, kill, user_rows
from tests.standins.slack_api import SlackStandIn

REPLY = "Hello from the honey pot, where the bees hum all day long and the clover smells sweet! 🐻"
LONG_REPLY = " ".join(f"Bears{i} love honey." for i in range(500))  # ~9,000 characters: three messages
LONG = {"contracts": {"chat_output": [{"name": "reply_length", "settings": {"max_chars": 40000}}]}}
STREAMING = {"streaming": {"enabled": True, "flush_interval_seconds": 0.05, "update_interval_seconds": 0.5}}


def parts_in_slack(slack: SlackStandIn, channel: str, question_id: int) -> list[int]:
    """The part numbers of Lukas's messages in `channel` naming `question_id`, in the order they are in Slack."""
    return [
        m["metadata"]["event_payload"]["part"]
        for m in sorted(slack.messages.get(channel, []), key=lambda m: float(m["ts"]))
        if m.get("metadata", {}).get("event_payload", {}).get("question_id") == str(question_id)
    ]


def texts_in_slack(slack: SlackStandIn, channel: str) -> list[str]:
    return [m["text"] for m in sorted(slack.messages.get(channel, []), key=lambda m: float(m["ts"]))]


def freeze_at_part(h: Harness, part: int) -> asyncio.Event:
    """As if the process froze (then was killed) just before posting `part` of a reply: that chat.postMessage
    never reaches Slack. Only the first time: whoever takes over posts normally. Returns an event set on freezing."""
    client = h.lukas.services.slack
    original = client.chat_postMessage
    frozen = asyncio.Event()

    async def post(**kwargs: Any) -> Any:
        metadata = kwargs.get("metadata") or {}
        if not frozen.is_set() and metadata.get("event_payload", {}).get("part") == part:
            frozen.set()
            await asyncio.Event().wait()  # never returns; kill() cancels it
        return await original(**kwargs)

    client.chat_postMessage = post  # type: ignore[method-assign]
    return frozen


async def test_a_crash_after_stop_stream_is_answered_once(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack, llm = SlackStandIn(), StreamingLLM(reply=REPLY)
    llm.stream_chunk_delay = 0.02
    original = chat_repo.record_reply
    died = asyncio.Event()

    def record_reply(*args: Any, **kwargs: Any) -> bool:
        if not died.is_set():  # the answering replica dies after chat.stopStream, before recording the reply
            died.set()
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(chat_repo, "record_reply", record_reply)
    overrides = {**FAST_LEASES, **STREAMING}
    async with slack, llm, running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=overrides) as a:
        root = new_ts()
        await a.send(mention_event(text="tell me about honey", ts=root))
        await a.wait_until(died.is_set)
        await kill(a)
        (question,) = await user_rows(a)
        assert question.reply_state == "posting"
        (stop,) = slack.calls_to("chat.stopStream")
        await expire_leases(a)
        async with running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=overrides) as b:
            await b.wait_until(lambda: bool(slack.calls_to("conversations.replies")))
            await b.settle()
            rows = await b.messages()
            assert [m.reply_state for m in rows if m.sender == "user"] == ["done"]
            assert [(m.content, m.slack_ts) for m in rows if m.sender == "bot"] == [(REPLY, stop.params["ts"])]
        assert len(slack.calls_to("chat.startStream")) == 1 and len(slack.calls_to("chat.stopStream")) == 1
        assert slack.calls_to("chat.postMessage") == []
        assert len(llm.chat_requests) == 1  # answered once: the model was not asked again
        assert texts_in_slack(slack, "C0GENERAL") == [REPLY]
        assert stop.params["metadata"] == {  # how the replica taking over found it
            "event_type": "lukas_reply",
            "event_payload": {"question_id": str(question.id), "part": 0},
        }


async def test_a_multi_part_post_interrupted_after_part_0_is_finished_once_on_recovery(
    tmp_path: Path, database_url: str
) -> None:
    slack, llm = SlackStandIn(), StreamingLLM(reply=LONG_REPLY)
    async with slack, llm, running_lukas(tmp_path, database_url, slack=slack, llm=llm, overrides=LONG) as h:
        frozen = freeze_at_part(h, 1)
        await h.send(message_event(text="tell me everything"))
        await h.wait_until(frozen.is_set)
        await kill(h)
        (question,) = await user_rows(h)
        assert question.reply_state == "posting"
        assert parts_in_slack(slack, "D0DM", question.id) == [0]
        h.lukas.services.chat._taking = True  # the same process restarted (another replica would do the same)
        await expire_leases(h)
        assert await h.lukas.services.chat.sweep_once() == 1
        await h.settle(timeout=20)

        assert parts_in_slack(slack, "D0DM", question.id) == [0, 1, 2]  # parts 1 and 2 posted once each
        posted = [c.params["metadata"]["event_payload"]["part"] for c in slack.calls_to("chat.postMessage")]
        assert posted == [0, 1, 2]
        assert " ".join(texts_in_slack(slack, "D0DM")).split() == LONG_REPLY.split()
        assert len(llm.chat_requests) == 1
        rows = await h.messages()
        assert [m.reply_state for m in rows if m.sender == "user"] == ["done"]
        (reply,) = [m for m in rows if m.sender == "bot"]
        assert reply.content == LONG_REPLY and reply.slack_ts == slack.messages["D0DM"][0]["ts"]


async def test_an_overflow_part_interrupted_is_the_only_part_posted_on_recovery(
    tmp_path: Path, database_url: str
) -> None:
    slack, llm = SlackStandIn(), StreamingLLM(reply=LONG_REPLY)
    llm.stream_chunk_delay = 0.0005
    overrides = {**STREAMING, **LONG}
    async with slack, llm, running_lukas(tmp_path, database_url, slack=slack, llm=llm, overrides=overrides) as h:
        frozen = freeze_at_part(h, 2)
        await h.send(mention_event(text="tell me everything"))
        await h.wait_until(frozen.is_set, timeout=20)
        await kill(h)
        (question,) = await user_rows(h)
        assert parts_in_slack(slack, "C0GENERAL", question.id) == [0, 1]  # the stream, then its first overflow
        h.lukas.services.chat._taking = True
        await expire_leases(h)
        assert await h.lukas.services.chat.sweep_once() == 1
        await h.settle(timeout=20)

        assert parts_in_slack(slack, "C0GENERAL", question.id) == [0, 1, 2]
        posted = [c.params["metadata"]["event_payload"]["part"] for c in slack.calls_to("chat.postMessage")]
        assert posted == [1, 2]  # never numbered from 0 again; only the missing part on recovery
        assert len(slack.calls_to("chat.startStream")) == 1
        assert " ".join(texts_in_slack(slack, "C0GENERAL")).split() == LONG_REPLY.split()
        assert len(llm.chat_requests) == 1
        rows = await h.messages()
        assert [m.reply_state for m in rows if m.sender == "user"] == ["done"]
        assert [m.content for m in rows if m.sender == "bot"] == [LONG_REPLY]


async def test_a_failed_overflow_post_is_not_taken_for_the_stream(tmp_path: Path, database_url: str) -> None:
    slack, llm = SlackStandIn(), StreamingLLM(reply=LONG_REPLY)
    llm.stream_chunk_delay = 0.0005
    overrides = {**STREAMING, **LONG}
    async with slack, llm, running_lukas(tmp_path, database_url, slack=slack, llm=llm, overrides=overrides) as h:
        slack.fail("chat.postMessage", "internal_error", status=500)  # the first overflow post: nothing landed
        await h.send(mention_event(text="tell me everything"))
        await h.settle(timeout=20)
        (question,) = await user_rows(h)
        assert parts_in_slack(slack, "C0GENERAL", question.id) == [0, 1, 2]
        assert " ".join(texts_in_slack(slack, "C0GENERAL")).split() == LONG_REPLY.split()
        assert question.reply_state == "done"
        assert [m.content for m in await h.messages() if m.sender == "bot"] == [LONG_REPLY]


async def test_a_part_slack_refuses_midway_is_recorded_as_what_slack_holds(tmp_path: Path, database_url: str) -> None:
    slack, llm = SlackStandIn(), StreamingLLM(reply=LONG_REPLY)
    async with slack, llm, running_lukas(tmp_path, database_url, slack=slack, llm=llm, overrides=LONG) as h:
        client = h.lukas.services.slack
        original = client.chat_postMessage

        async def post(**kwargs: Any) -> Any:
            if kwargs["metadata"]["event_payload"]["part"] == 1:
                slack.fail("chat.postMessage", "restricted_action")  # Slack refuses the second part for good
            return await original(**kwargs)

        client.chat_postMessage = post  # type: ignore[method-assign]
        await h.send(message_event(text="tell me everything"))
        await h.settle(timeout=20)
        (question,) = await user_rows(h)
        assert parts_in_slack(slack, "D0DM", question.id) == [0]
        assert len(slack.calls_to("chat.postMessage")) == 2  # refused, not retried blindly
        assert question.reply_state == "done"
        (reply,) = [m for m in await h.messages() if m.sender == "bot"]
        assert (reply.content, reply.slack_ts) == tuple(slack.messages["D0DM"][0][k] for k in ("text", "ts"))
