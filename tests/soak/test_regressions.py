"""Focused regression tests for what the soak found."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
import tiktoken

from bot.tokens import counting
from bot.tokens.counting import encoding_for, lean_encoding
from tests.harness import envelope, message_event, running_lukas, sign


async def test_bodies_slack_never_sends_get_400_not_500(tmp_path: Path, database_url: str) -> None:
    """A 500 makes Slack redeliver; junk must be refused once, and Lukas must keep answering."""
    junk = [b"{not json", b"[]", b"payload=%7Bbad", b'"just a string"']
    async with running_lukas(tmp_path, database_url) as h:
        for body in junk:
            status, _ = await h.post_raw(body, sign(body))
            assert status == 400, body
        good = json.dumps(envelope(message_event(text="still there?"))).encode()
        assert (await h.post_raw(good, sign(good)))[0] == 200
        await h.settle()
        assert len(h.slack.posted_texts("D0DM")) == 1


async def test_the_tokenizer_is_loaded_at_start_not_on_the_first_message(tmp_path: Path, database_url: str) -> None:
    """Loading an encoding takes ~0.5 s; on the first message it stalled every ack behind it."""
    encoding_for.cache_clear()
    async with running_lukas(tmp_path, database_url) as h:
        assert encoding_for.cache_info().currsize == 1
        assert h.llm.chat_requests == []  # loaded before any message arrived


async def test_the_tokenizer_is_loaded_on_the_thread_that_builds_lukas(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsed on a worker thread, the tokenizer's file left ~10 MB of freed heap resident in that thread's malloc
    arena (bench/memory_at_rest.py: 196.5 -> 186.8 MB once it moved to the thread that builds Lukas)."""
    loaded_on: list[int] = []

    def recording(encoding_name: str) -> tiktoken.Encoding:
        loaded_on.append(threading.get_ident())
        return lean_encoding(encoding_name)

    monkeypatch.setattr(counting, "lean_encoding", recording)
    encoding_for.cache_clear()
    async with running_lukas(tmp_path, database_url):
        assert loaded_on == [threading.get_ident()]


async def test_fast_failures_that_retries_absorb_do_not_open_the_breaker(tmp_path: Path, database_url: str) -> None:
    """Under load, 5xx answers come back before slow successes; counting attempts opened the breaker at a 15 %
    error rate and turned the next minute into fallback lines. The breaker counts whole requests."""
    from tests.standins.openai_api import LLMFault

    slow_retries = {"breaker": {"fail_max": 5}, "retry": {"chat": {"wait_min_seconds": 0.3, "wait_max_seconds": 0.3}}}
    async with running_lukas(tmp_path, database_url, overrides=slow_retries) as h:
        h.lukas.services.gateway._sleep = asyncio.sleep  # real waits: all first attempts fail before any retry
        failed_once: set[str] = set()

        def first_attempt_fails(body: dict) -> LLMFault | None:
            question = body["messages"][-1]["content"]
            if question in failed_once:
                return None
            failed_once.add(question)
            return LLMFault(500)

        h.llm.fault_for = first_attempt_fails  # 8 fast failures in a row; every retry then succeeds
        await asyncio.gather(*(h.send(message_event(text=f"hello {i}", channel=f"D0R{i}")) for i in range(8)))
        await h.settle()
        assert h.lukas.services.gateway.breaker_states() == {"openai:gpt-4.1-mini": "closed"}
        posts = [h.slack.posted_texts(f"D0R{i}") for i in range(8)]
        assert all(p == ["Hello from the honey pot! 🐻"] for p in posts), posts
        assert len(h.llm.chat_requests) == 16
