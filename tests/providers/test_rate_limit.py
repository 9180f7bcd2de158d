"""Client-side rate limits: never more than the limit in any window, counted at the stand-in; too long a wait moves
down the chain."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from bot.llm.rate_limit import SlidingWindowLimiter
from tests.harness import message_event, running_lukas
from tests.providers.standins import chain, provider
from tests.standins.openai_api import OpenAIStandIn


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def most_in_any_window(starts: list[float], window: float) -> int:
    starts = sorted(starts)
    return max((sum(1 for t in starts if s <= t < s + window) for s in starts), default=0)


def test_requests_within_the_limit_start_at_once_and_the_rest_wait_their_turn() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(requests=3, tokens=None, window=60, clock=clock)
    waits = [limiter.reserve(tokens=10, max_wait=1000) for _ in range(7)]
    assert waits == [0, 0, 0, 60, 60, 60, 120]
    assert limiter.reserve(tokens=10, max_wait=100) is None  # would start at +120 s: too long, nothing reserved
    clock.now += 60
    assert limiter.reserve(tokens=10, max_wait=1000) == 60  # beside the last one waiting (starts never go back)


def test_tokens_per_window_and_a_request_bigger_than_the_limit() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(requests=None, tokens=1000, window=60, clock=clock)
    assert limiter.reserve(tokens=600, max_wait=0) == 0
    assert limiter.reserve(tokens=600, max_wait=0) is None
    assert limiter.reserve(tokens=600, max_wait=60) == 60
    assert limiter.reserve(tokens=1001, max_wait=10_000) is None  # can never fit a window


def test_no_window_ever_holds_more_than_the_limits_under_random_traffic() -> None:
    rng = random.Random(3)
    clock = FakeClock()
    limiter = SlidingWindowLimiter(requests=5, tokens=2000, window=10, clock=clock)
    granted: list[tuple[float, int]] = []
    for _ in range(400):
        clock.now += rng.expovariate(2.0)
        tokens = rng.randint(50, 900)
        wait = limiter.reserve(tokens=tokens, max_wait=rng.choice([0, 3, 30]))
        if wait is not None:
            granted.append((clock.now + wait, tokens))
    starts = sorted(granted)
    assert len(starts) > 60  # ~80 fit: 2000 tokens per 10 s at ~475 tokens a request, over ~200 s
    for start, _ in starts:
        inside = [used for t, used in starts if start <= t < start + 10]
        assert len(inside) <= 5 and sum(inside) <= 2000


async def test_a_rate_limit_is_never_exceeded_at_the_provider(tmp_path: Path, database_url: str) -> None:
    llm = OpenAIStandIn()
    async with llm:
        overrides = chain(
            primary=provider(llm, "model-a", rate_limit={"requests_per_minute": 3, "max_wait_seconds": 10})
        )
        async with running_lukas(tmp_path, database_url, llm=llm, overrides=overrides) as h:
            h.lukas.services.gateway.guards.rate_window_seconds = 2.0  # "per minute" becomes per 2 s: a fast test
            await asyncio.gather(*(h.send(message_event(text=f"hi {i}", channel=f"D0RL{i}")) for i in range(8)))
            await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 8, timeout=25)
            await h.settle()
            arrivals = [r.at for r in llm.chat_requests]
            assert len(arrivals) == 8
            # At most 3 in any 2 s window (less 300 ms for loopback jitter on a loaded 2-core machine); without the
            # limiter all 8 land at once.
            assert most_in_any_window(arrivals, 1.7) == 3
            assert max(arrivals) - min(arrivals) >= 3.7  # 3 + 3 + 2: the last two waited two windows
            assert {c.outcome for c in await h.llm_calls()} == {"ok"}


async def test_a_wait_longer_than_allowed_moves_down_the_chain(tmp_path: Path, database_url: str) -> None:
    a, b = OpenAIStandIn(reply="from A"), OpenAIStandIn(reply="from B")
    async with a, b:
        limited = provider(a, "model-a", rate_limit={"requests_per_minute": 2, "max_wait_seconds": 0})
        overrides = chain(primary=limited, backup=provider(b, "model-b"))
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            for i in range(4):
                await h.send(message_event(text=f"hi {i}", channel=f"D0TH{i}"))
                await h.settle()
            assert (len(a.chat_requests), len(b.chat_requests)) == (2, 2)
            assert [p.text for p in h.slack.calls_to("chat.postMessage")] == ["from A"] * 2 + ["from B"] * 2
            rows = [(c.provider, c.outcome, c.attempts) for c in await h.llm_calls()]
            assert rows == [("primary", "ok", 1)] * 2 + [("primary", "throttled", 0), ("backup", "ok", 1)] * 2


async def test_tokens_per_minute_count_the_prompt_and_the_reply_budget(tmp_path: Path, database_url: str) -> None:
    a, b = OpenAIStandIn(reply="from A"), OpenAIStandIn(reply="from B")
    async with a, b:
        # One request is ~230 prompt tokens + llm.max_tokens (150): 600 tokens/min let one through, not two.
        limited = provider(a, "model-a", rate_limit={"tokens_per_minute": 600, "max_wait_seconds": 0})
        overrides = chain(primary=limited, backup=provider(b, "model-b"))
        async with running_lukas(tmp_path, database_url, llm=a, overrides=overrides) as h:
            for i in range(2):
                await h.send(message_event(text=f"hi {i}", channel=f"D0TK{i}"))
                await h.settle()
            assert (len(a.chat_requests), len(b.chat_requests)) == (1, 1)
