"""The provider chain end to end: two or three OpenAI stand-ins as named providers, one failure kind at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.config.loader import load_config
from tests.harness import message_event, running_lukas
from tests.providers.standins import chain, provider
from tests.standins.openai_api import LLMFault, OpenAIStandIn

FALLBACKS = set(load_config(Path(__file__).resolve().parents[2] / "config.yml").fallbacks.lines)
A_REPLY, B_REPLY, C_REPLY = "Primary bear here 🐻", "Backup bear here 🐻", "Big bear here 🐻"


def rows_of(calls: list) -> list[tuple[str, str, str, int]]:  # type: ignore[type-arg]
    return [(c.provider, c.model, c.outcome, c.attempts) for c in calls]


@pytest.mark.parametrize(
    ("faults", "a_requests", "rows", "answer"),
    [
        ([LLMFault(500)] * 3, 3, [("primary", "model-a", "server_error", 3), ("backup", "model-b", "ok", 1)], B_REPLY),
        (
            [LLMFault(502, body="<html>bad gateway</html>")] * 3,
            3,
            [("primary", "model-a", "server_error", 3), ("backup", "model-b", "ok", 1)],
            B_REPLY,
        ),
        ([LLMFault(503), LLMFault(500)], 3, [("primary", "model-a", "ok", 3)], A_REPLY),
        (
            [LLMFault(429, retry_after=120, code="rate_limit_exceeded")],
            1,
            [("primary", "model-a", "rate_limited", 1), ("backup", "model-b", "ok", 1)],
            B_REPLY,
        ),
        (
            [LLMFault(401, code="invalid_api_key")],
            1,
            [("primary", "model-a", "auth", 1), ("backup", "model-b", "ok", 1)],
            B_REPLY,
        ),
        (
            [LLMFault(400, code="invalid_request_error", message="bad messages")],
            1,
            [("primary", "model-a", "invalid_request", 1), ("backup", "model-b", "ok", 1)],
            B_REPLY,
        ),
        (
            [LLMFault(400, code="content_filter", message="content management policy")],
            1,
            [("primary", "model-a", "content_filter", 1)],
            None,  # another provider would only be asked to say it anyway: a fallback line
        ),
    ],
    ids=["500", "502-html", "5xx-then-ok", "retry-after-too-long", "auth", "invalid", "content-filter"],
)
async def test_chain_order_under_each_failure_kind(
    tmp_path: Path,
    database_url: str,
    faults: list[LLMFault],
    a_requests: int,
    rows: list[tuple[str, str, str, int]],
    answer: str | None,
) -> None:
    a, b = OpenAIStandIn(reply=A_REPLY), OpenAIStandIn(reply=B_REPLY)
    async with a, b:
        overrides = chain(primary=provider(a, "model-a"), backup=provider(b, "model-b"))
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            a.faults.extend(faults)
            await h.send(message_event(text="hello?"))
            await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 1)
            await h.settle()
            assert len(a.chat_requests) == a_requests
            assert len(b.chat_requests) == (1 if answer == B_REPLY else 0)
            (post,) = h.slack.posted_texts("D0DM")
            assert post == answer if answer else post in FALLBACKS
            assert rows_of(await h.llm_calls()) == rows
            (reply,) = [m for m in await h.messages() if m.sender != "user"]
            assert reply.sender == ("bot" if answer else "fallback")
            if answer == B_REPLY:
                assert b.chat_requests[0].body["messages"] == a.chat_requests[0].body["messages"]


async def test_timeouts_use_the_providers_own_retry_settings_then_move_on(tmp_path: Path, database_url: str) -> None:
    a, b = OpenAIStandIn(reply=A_REPLY), OpenAIStandIn(reply=B_REPLY)
    async with a, b:
        primary = provider(a, "model-a", timeout_seconds=0.3, retry={"attempts": 2})
        overrides = chain(primary=primary, backup=provider(b, "model-b"))
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            a.faults.extend([LLMFault(200, hang=1.0)] * 2)
            await h.send(message_event(text="slow?"))
            await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 1, timeout=15)
            await h.settle()
            assert len(a.chat_requests) == 2  # its own `attempts: 2`, not retry.chat's 3
            assert rows_of(await h.llm_calls()) == [
                ("primary", "model-a", "timeout", 2),
                ("backup", "model-b", "ok", 1),
            ]
            assert h.slack.posted_texts("D0DM") == [B_REPLY]


async def test_a_context_length_error_goes_to_the_next_model_with_a_larger_window(
    tmp_path: Path, database_url: str
) -> None:
    a, b, c = OpenAIStandIn(reply=A_REPLY), OpenAIStandIn(reply=B_REPLY), OpenAIStandIn(reply=C_REPLY)
    async with a, b, c:
        overrides = chain(
            small=provider(a, "model-a", window=8000),
            same=provider(b, "model-b", window=8000),  # as small as the one that failed: skipped
            big=provider(c, "model-c", window=200_000),
        )
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            a.faults.append(LLMFault(400, code="context_length_exceeded", message="maximum context length"))
            await h.send(message_event(text="a long story"))
            await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 1)
            await h.settle()
            assert (len(a.chat_requests), len(b.chat_requests), len(c.chat_requests)) == (1, 0, 1)
            assert h.slack.posted_texts("D0DM") == [C_REPLY]
            assert rows_of(await h.llm_calls()) == [
                ("small", "model-a", "context_length", 1),
                ("big", "model-c", "ok", 1),
            ]


async def test_a_prompt_too_big_for_a_window_skips_that_model_without_calling_it(
    tmp_path: Path, database_url: str
) -> None:
    a, b = OpenAIStandIn(reply=A_REPLY), OpenAIStandIn(reply=B_REPLY)
    async with a, b:
        # llm.max_tokens (150) + the persona prompt (~230 tokens) do not fit 256 tokens.
        overrides = chain(tiny=provider(a, "model-a", window=256), roomy=provider(b, "model-b"))
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            await h.send(message_event(text="hello"))
            await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 1)
            await h.settle()
            assert (len(a.chat_requests), len(b.chat_requests)) == (0, 1)
            assert rows_of(await h.llm_calls()) == [
                ("tiny", "model-a", "context_length", 0),
                ("roomy", "model-b", "ok", 1),
            ]


async def test_every_provider_failing_ends_in_a_fallback_line_with_a_row_each(
    tmp_path: Path, database_url: str
) -> None:
    a, b = OpenAIStandIn(reply=A_REPLY), OpenAIStandIn(reply=B_REPLY)
    async with a, b:
        overrides = chain(primary=provider(a, "model-a"), backup=provider(b, "model-b", retry={"attempts": 1}))
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            a.faults.extend([LLMFault(500)] * 3)
            b.faults.append(LLMFault(503))
            await h.send(message_event(text="anyone home?"))
            await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 1)
            await h.settle()
            assert h.slack.posted_texts("D0DM")[0] in FALLBACKS
            assert rows_of(await h.llm_calls()) == [
                ("primary", "model-a", "server_error", 3),
                ("backup", "model-b", "server_error", 1),
            ]
            assert [m.sender for m in await h.messages()] == ["user", "fallback"]


async def test_each_model_has_its_own_breaker(tmp_path: Path, database_url: str) -> None:
    a, b = OpenAIStandIn(reply=A_REPLY), OpenAIStandIn(reply=B_REPLY)
    async with a, b:
        primary = provider(a, "model-a", retry={"attempts": 1}, breaker={"fail_max": 2, "reset_seconds": 0.5})
        overrides = chain(primary=primary, backup=provider(b, "model-b"))
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            a.faults.extend([LLMFault(500)] * 2)
            for i in range(2):
                await h.send(message_event(text=f"try {i}"))
                await h.settle()
            gateway = h.lukas.services.gateway
            assert gateway.breaker_states() == {"primary:model-a": "open", "backup:model-b": "closed"}

            await h.send(message_event(text="still down?"))
            await h.settle()
            assert len(a.chat_requests) == 2  # the open breaker answered for model-a: not called
            calls = rows_of(await h.llm_calls())
            assert calls[-2:] == [("primary", "model-a", "breaker_open", 0), ("backup", "model-b", "ok", 1)]
            assert h.slack.posted_texts("D0DM") == [B_REPLY] * 3

            await asyncio.sleep(0.6)  # reset_seconds: one trial request goes to model-a again
            await h.send(message_event(text="better now?"))
            await h.settle()
            assert len(a.chat_requests) == 3 and h.slack.posted_texts("D0DM")[-1] == A_REPLY
            assert gateway.breaker_states() == {"primary:model-a": "closed", "backup:model-b": "closed"}
