"""Streamed replies end to end: the model streams into the stand-in Slack (start/append/stop, or post + update), the
stored reply is always the complete text, and anything that goes wrong mid-stream leaves a complete fallback line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot.config.loader import load_config
from bot.store import chat_repo
from tests.harness import mention_event, message_event, new_ts, running_lukas
from tests.providers.standins import StreamFault, StreamingLLM, call_text, chain, methods, provider, streamed_text
from tests.standins.openai_api import LLMFault, OpenAIStandIn

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config.yml")
FALLBACKS = set(CONFIG.fallbacks.lines)
REPLY = "Hello from the honey pot, where the bees hum all day long and the clover smells sweet! 🐻"
STREAMING = {"streaming": {"enabled": True, "flush_interval_seconds": 0.05, "update_interval_seconds": 0.5}}


def streaming(**more: Any) -> dict[str, Any]:
    return {**STREAMING, **more}


async def test_a_streamed_reply_in_a_thread_goes_start_append_stop_with_the_full_text(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    marked_at: list[float] = []
    original = chat_repo.mark_posting

    def mark_posting(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        marked_at.append(time.monotonic())

    monkeypatch.setattr(chat_repo, "mark_posting", mark_posting)
    llm = StreamingLLM(reply=REPLY)
    llm.stream_chunk_delay = 0.02
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=streaming()) as h:
        root = new_ts()
        await h.send(mention_event(text="tell me about honey", ts=root))
        await h.wait_until(lambda: bool(h.slack.calls_to("chat.stopStream")))
        await h.settle()

        assert llm.chat_requests[0].body["stream"] is True
        (start,) = h.slack.calls_to("chat.startStream")
        assert start.params["channel"] == "C0GENERAL" and start.params["thread_ts"] == root
        assert (start.params["recipient_user_id"], start.params["recipient_team_id"]) == ("U0ANNA", "T0TEAM")
        assert h.slack.calls_to("chat.appendStream"), "the reply should grow in several steps"
        assert streamed_text(h.slack, "C0GENERAL") == REPLY
        assert not REPLY.startswith(call_text(start)) or call_text(start) != REPLY  # the first step was partial
        assert h.slack.calls_to("chat.postMessage") == [] and h.slack.calls_to("chat.update") == []
        assert marked_at and marked_at[0] < start.at  # posting was marked before anything was visible

        user_row, reply_row = await h.messages()
        assert (user_row.reply_state, reply_row.sender, reply_row.content) == ("done", "bot", REPLY)
        assert reply_row.slack_ts == h.slack.calls_to("chat.stopStream")[0].params["ts"]
        (call,) = await h.llm_calls()
        assert (call.outcome, call.prompt_tokens, call.completion_tokens) == ("ok", 42, 17)


async def test_a_dm_streams_by_posting_then_editing_the_message(tmp_path: Path, database_url: str) -> None:
    llm = StreamingLLM(reply=REPLY)
    llm.stream_chunk_delay = 0.03
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=streaming()) as h:
        await h.send(message_event(text="hi there"))
        await h.settle()
        (post,) = h.slack.calls_to("chat.postMessage")
        assert post.params["channel"] == "D0DM" and not post.params.get("thread_ts")
        assert REPLY.startswith(post.text) and post.text != REPLY
        updates = h.slack.calls_to("chat.update")
        assert updates and updates[-1].text == REPLY
        assert h.slack.calls_to("chat.startStream") == []
        (reply,) = [m for m in await h.messages() if m.sender == "bot"]
        assert reply.content == REPLY
        assert {u.params["ts"] for u in updates} == {reply.slack_ts}  # edits of the one posted message


async def test_when_start_stream_fails_the_reply_is_posted_and_updated(tmp_path: Path, database_url: str) -> None:
    llm = StreamingLLM(reply=REPLY)
    llm.stream_chunk_delay = 0.03
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=streaming()) as h:
        h.slack.fail("chat.startStream", "internal_error", times=5)
        root = new_ts()
        await h.send(mention_event(text="stream please", ts=root))
        await h.settle()
        assert len(h.slack.calls_to("chat.startStream")) == 1
        (post,) = h.slack.calls_to("chat.postMessage")
        assert post.params["thread_ts"] == root and REPLY.startswith(post.text)
        updates = h.slack.calls_to("chat.update")
        assert updates[-1].text == REPLY
        assert h.slack.calls_to("chat.appendStream") == [] and h.slack.calls_to("chat.stopStream") == []
        assert [m.content for m in await h.messages() if m.sender == "bot"] == [REPLY]


async def test_a_stream_closed_by_slack_continues_with_chat_update_on_the_same_message(
    tmp_path: Path, database_url: str
) -> None:
    llm = StreamingLLM(reply=REPLY)
    llm.stream_chunk_delay = 0.03
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=streaming()) as h:
        h.slack.fail("chat.appendStream", "message_not_in_streaming_state", times=50)
        await h.send(mention_event(text="stream please"))
        await h.settle()
        (start,) = h.slack.calls_to("chat.startStream")
        updates = h.slack.calls_to("chat.update")
        assert updates and updates[-1].text == REPLY
        stream_ts = {u.params["ts"] for u in updates}
        assert len(stream_ts) == 1  # always the streamed message, never a second one
        assert h.slack.calls_to("chat.postMessage") == []
        (reply,) = [m for m in await h.messages() if m.sender == "bot"]
        assert reply.content == REPLY and reply.slack_ts in stream_ts and call_text(start)


async def test_a_banned_term_mid_stream_stops_it_and_the_message_becomes_a_fallback(
    tmp_path: Path, database_url: str
) -> None:
    reply = "Once upon a time the bees told me a long story about the kraken of the deep blue sea and more"
    llm = StreamingLLM(reply=reply)
    llm.stream_chunk_delay = 0.04
    overrides = streaming(contracts={"banned_terms": ["kraken"]})
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=overrides) as h:
        await h.send(mention_event(text="a story please"))
        await h.settle()
        (start,) = h.slack.calls_to("chat.startStream")
        assert reply.startswith(call_text(start)) and call_text(start)  # words were visible before the term came
        everything = json.dumps([c.params for c in h.slack.calls]).lower()
        assert "kraken" not in everything  # not one Slack call ever carried it
        assert "deep blue sea" not in everything  # nothing after it was shown either
        updates = h.slack.calls_to("chat.update")
        assert updates and updates[-1].text in FALLBACKS
        assert h.slack.calls_to("chat.stopStream"), "the stream is closed before the message is replaced"
        assert [m.sender for m in await h.messages()] == ["user", "fallback"]
        (call,) = await h.llm_calls()
        assert call.outcome == "ok"  # the model answered (and was paid); the checks stopped the words


@pytest.mark.parametrize(("kind", "outcome"), [("bad_json", "server_error"), ("cut", "incomplete")])
async def test_a_model_failing_mid_stream_leaves_a_complete_fallback_and_no_retry(
    tmp_path: Path, database_url: str, kind: str, outcome: str
) -> None:
    a, b = StreamingLLM(reply=REPLY), OpenAIStandIn(reply="from the backup")
    a.stream_chunk_delay = 0.03
    async with a, b:
        overrides = streaming(**chain(primary=provider(a, "model-a"), backup=provider(b, "model-b")))
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            a.stream_faults.append(StreamFault(kind, after=6))
            await h.send(mention_event(text="stream please"))
            await h.settle()
            assert len(a.chat_requests) == 1 and b.chat_requests == []  # words were shown: no retry, no backup
            (start,) = h.slack.calls_to("chat.startStream")
            assert REPLY.startswith(streamed_text(h.slack, "C0GENERAL"))
            updates = h.slack.calls_to("chat.update")
            assert updates and updates[-1].text in FALLBACKS  # the half reply was replaced
            assert [m.sender for m in await h.messages()] == ["user", "fallback"]
            (call,) = await h.llm_calls()
            assert (call.provider, call.outcome, call.attempts) == ("primary", outcome, 1)
            assert call.completion_tokens > 0  # what it streamed before breaking off is billed
            assert start.params["channel"] == "C0GENERAL"


async def test_a_stream_that_fails_before_its_first_token_moves_down_the_chain(
    tmp_path: Path, database_url: str
) -> None:
    a, b = StreamingLLM(reply="never seen"), StreamingLLM(reply=REPLY)
    b.stream_chunk_delay = 0.02
    async with a, b:
        primary = provider(a, "model-a", retry={"attempts": 2})
        overrides = streaming(**chain(primary=primary, backup=provider(b, "model-b")))
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            a.faults.extend([LLMFault(500), LLMFault(503)])
            await h.send(mention_event(text="stream please"))
            await h.settle()
            assert streamed_text(h.slack, "C0GENERAL") == REPLY
            rows = [(c.provider, c.outcome, c.attempts) for c in await h.llm_calls()]
            assert rows == [("primary", "server_error", 2), ("backup", "ok", 1)]
            assert methods(h.slack).count("chat.startStream") == 1


async def test_with_every_provider_down_nothing_streams_and_a_fallback_is_posted(
    tmp_path: Path, database_url: str
) -> None:
    llm = StreamingLLM(reply=REPLY)
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=streaming()) as h:
        llm.faults.extend([LLMFault(500)] * 3)
        await h.send(mention_event(text="stream please"))
        await h.settle()
        assert h.slack.calls_to("chat.startStream") == []
        (post,) = h.slack.calls_to("chat.postMessage")
        assert post.text in FALLBACKS
        assert [m.sender for m in await h.messages()] == ["user", "fallback"]


async def test_if_the_half_reply_cannot_be_edited_it_is_deleted_and_the_fallback_posted(
    tmp_path: Path, database_url: str
) -> None:
    llm = StreamingLLM(reply=REPLY)
    llm.stream_chunk_delay = 0.03
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=streaming()) as h:
        llm.stream_faults.append(StreamFault("cut", after=5))
        h.slack.fail("chat.update", "cant_update_message", times=5)
        root = new_ts()
        await h.send(mention_event(text="stream please", ts=root))
        await h.settle()
        (delete,) = h.slack.calls_to("chat.delete")
        (post,) = h.slack.calls_to("chat.postMessage")
        assert post.text in FALLBACKS and post.params["thread_ts"] == root
        assert delete.at < post.at and delete.params["ts"] == h.slack.calls_to("chat.update")[0].params["ts"]
        (row,) = [m for m in await h.messages() if m.sender == "fallback"]
        assert row.slack_ts not in (None, delete.params["ts"])


async def test_a_streamed_reply_longer_than_one_message_ends_as_several_complete_messages(
    tmp_path: Path, database_url: str
) -> None:
    long_reply = " ".join(f"Bears{i} love honey." for i in range(500))  # ~9,000 characters
    llm = StreamingLLM(reply=long_reply)
    llm.stream_chunk_delay = 0.0005
    overrides = streaming(contracts={"chat_output": [{"name": "reply_length", "settings": {"max_chars": 40000}}]})
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=overrides) as h:
        await h.send(mention_event(text="tell me everything"))
        await h.settle(timeout=20)
        assert len(streamed_text(h.slack, "C0GENERAL")) <= 3900  # the stream never outgrew one message
        (rewrite,) = h.slack.calls_to("chat.update")
        parts = [rewrite.text, *h.slack.posted_texts("C0GENERAL")]
        assert all(len(part) <= 3900 for part in parts) and len(parts) >= 3
        assert " ".join(parts).split() == long_reply.split()
        assert [m.content for m in await h.messages() if m.sender == "bot"] == [long_reply]
