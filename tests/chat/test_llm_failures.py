"""Each LLM failure class -> the right number of attempts, an in-character fallback, and the right ledger row."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from bot.config.loader import load_config
from tests.harness import message_event, running_lukas
from tests.standins.openai_api import LLMFault

FALLBACKS = set(load_config(Path(__file__).resolve().parents[2] / "config.yml").fallbacks.lines)


@pytest.mark.parametrize(
    ("faults", "attempts", "outcome", "answered"),
    [
        ([LLMFault(500)] * 3, 3, "server_error", False),
        ([LLMFault(502, body="<html>bad gateway</html>")] * 3, 3, "server_error", False),
        ([LLMFault(429, retry_after=2, code="rate_limit_exceeded")], 2, "ok", True),
        ([LLMFault(503), LLMFault(500)], 3, "ok", True),
        ([LLMFault(401, code="invalid_api_key")], 1, "auth", False),
        ([LLMFault(400, code="invalid_request_error", message="bad messages")], 1, "invalid_request", False),
        ([LLMFault(400, code="context_length_exceeded", message="maximum context length")], 1, "context_length", False),
        ([LLMFault(400, code="content_filter", message="content management policy")], 1, "content_filter", False),
        ([LLMFault(429, retry_after=120)], 1, "rate_limited", False),
    ],
    ids=[
        "500",
        "502-html",
        "429-retry-after",
        "5xx-then-ok",
        "auth",
        "invalid",
        "context",
        "filter",
        "retry-after-too-long",
    ],
)
async def test_error_class_attempts_and_outcome(
    tmp_path: Path, database_url: str, faults: list[LLMFault], attempts: int, outcome: str, answered: bool
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        h.llm.faults.extend(faults)
        await h.send(message_event(text="hello?"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) >= 1)
        await h.settle()
        assert len(h.llm.chat_requests) == attempts
        (post,) = [c.text for c in h.slack.calls_to("chat.postMessage") if c.params["channel"] == "D0DM"]
        assert (post not in FALLBACKS) is answered
        (call,) = await h.llm_calls()
        assert (call.outcome, call.attempts) == (outcome, attempts)
        senders = [m.sender for m in await h.messages()]
        assert senders == ["user", "bot" if answered else "fallback"]
        if faults[0].retry_after == 2:
            assert h.waits == [2.0]


async def test_timeouts_are_retried_then_fall_back(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides={"llm": {"timeout_seconds": 0.3}}) as h:
        h.llm.faults.extend([LLMFault(200, hang=1.0)] * 3)
        await h.send(message_event(text="slow?"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1, timeout=15)
        await h.settle()
        assert len(h.llm.chat_requests) == 3
        (call,) = await h.llm_calls()
        assert call.outcome == "timeout"
        assert h.slack.posted_texts()[0] in FALLBACKS


async def test_auth_failure_alerts_admins_at_most_once_an_hour(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides={"admins": ["U0ADMIN"]}) as h:
        h.llm.faults.extend([LLMFault(401, code="invalid_api_key")] * 2)
        for text in ("one", "two"):
            await h.send(message_event(text=text))
            await h.settle()
        admin_dms = [c for c in h.slack.calls_to("chat.postMessage") if c.params["channel"] == "D0ADMIN"]
        assert len(admin_dms) == 1 and "cannot log in" in admin_dms[0].text
        assert "sk-test" not in admin_dms[0].text
        user_posts = [c for c in h.slack.calls_to("chat.postMessage") if c.params["channel"] == "D0DM"]
        assert len(user_posts) == 2 and all(p.text in FALLBACKS for p in user_posts)


async def test_breaker_opens_after_five_fails_fast_and_recovers(tmp_path: Path, database_url: str) -> None:
    overrides = {"retry": {"chat": {"attempts": 1}}, "breaker": {"fail_max": 5, "reset_seconds": 0.5}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        h.llm.faults.extend([LLMFault(500)] * 5)
        for i in range(5):
            await h.send(message_event(text=f"try {i}"))
            await h.settle()
        assert len(h.llm.chat_requests) == 5
        assert h.lukas.services.gateway.breaker_states() == {"openai:gpt-4.1-mini": "open"}

        await h.send(message_event(text="still down?"))
        await h.settle()
        assert len(h.llm.chat_requests) == 5  # failed fast: the model was not called
        calls = await h.llm_calls()
        assert calls[-1].outcome == "breaker_open" and calls[-1].attempts == 0

        await asyncio.sleep(0.6)
        await h.send(message_event(text="better now?"))
        await h.settle()
        assert len(h.llm.chat_requests) == 6
        assert h.slack.posted_texts()[-1] == "Hello from the honey pot! 🐻"
        assert h.lukas.services.gateway.breaker_states() == {"openai:gpt-4.1-mini": "closed"}


async def test_auth_errors_do_not_count_towards_the_breaker(tmp_path: Path, database_url: str) -> None:
    overrides = {"retry": {"chat": {"attempts": 1}}, "breaker": {"fail_max": 2, "reset_seconds": 60}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        h.llm.faults.extend([LLMFault(401, code="invalid_api_key")] * 4)
        for i in range(4):
            await h.send(message_event(text=f"auth {i}"))
            await h.settle()
        assert len(h.llm.chat_requests) == 4
        assert h.lukas.services.gateway.breaker_states() == {"openai:gpt-4.1-mini": "closed"}


async def test_fallback_lines_never_repeat_back_to_back_in_a_conversation(tmp_path: Path, database_url: str) -> None:
    overrides = {"retry": {"chat": {"attempts": 1}}, "breaker": {"fail_max": 100}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        h.llm.faults.extend([LLMFault(500)] * 12)
        for i in range(12):
            await h.send(message_event(text=f"again {i}"))
            await h.settle()
        posts = h.slack.posted_texts("D0DM")
        assert len(posts) == 12 and all(p in FALLBACKS for p in posts)
        assert all(a != b for a, b in itertools.pairwise(posts))
        assert len(h.llm.chat_requests[-1].body["messages"]) == 13  # system + 12 questions; fallbacks left out
        assert all(m["role"] != "assistant" for m in h.llm.chat_requests[-1].body["messages"])
