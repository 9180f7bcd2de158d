"""Provider rate limits shared by every replica: the `limits` library's moving window in Redis. While Redis is
unreachable each process falls back to its own sliding window (bot.llm.rate_limit), as without Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from bot.shared.health import TIMEOUT_SECONDS, RedisHealth

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]


class SharedRateLimits:
    """One moving-window limiter in Redis for all providers; keys name the provider."""

    def __init__(self, health: RedisHealth) -> None:
        self._health = health
        storage = RedisStorage(
            f"async+{health.url}",
            implementation="redispy",
            key_prefix="lukas:limits",
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
        )
        self._limiter = MovingWindowRateLimiter(storage)

    def usable(self) -> bool:
        return self._health.usable()

    async def acquire(
        self,
        *,
        provider: str,
        requests: int | None,
        tokens: int | None,
        cost: int,
        window: float,
        max_wait: float,
        sleep: Sleep = asyncio.sleep,
    ) -> bool | None:
        """Wait for room for one request of `cost` tokens; False when that would take longer than `max_wait` (or can
        never fit), None when Redis failed (the caller uses its in-process limiter instead)."""
        seconds = max(round(window), 1)
        items: list[tuple[RateLimitItem, int]] = []
        if requests is not None:
            items.append((RateLimitItemPerSecond(requests, seconds, namespace="requests"), 1))
        if tokens is not None:
            if cost > tokens:
                return False
            items.append((RateLimitItemPerSecond(tokens, seconds, namespace="tokens"), cost))
        deadline = time.monotonic() + max_wait
        try:
            while True:
                wait = 0.0
                for item, amount in items:
                    if not await self._limiter.test(item, provider, cost=amount):
                        stats = await self._limiter.get_window_stats(item, provider)
                        wait = max(wait, stats.reset_time - time.time(), 0.02)
                if wait == 0.0:
                    if all([await self._limiter.hit(item, provider, cost=amount) for item, amount in items]):
                        return True
                    wait = 0.02  # another replica took the room between test and hit
                if time.monotonic() + wait > deadline:
                    return False
                await sleep(wait)
        except Exception as error:  # Redis went away: limits raise the driver's own errors
            self._health.failed(error)
            return None
