"""The chat limits' windows in Redis, shared by every replica: the same `limits` moving window as the provider rate
limits (bot.shared.rate_limits), one per limit key. Judged inside the accept transaction (so the verdict is stored
with the message), hence the blocking client. None when Redis failed: the caller judges in the database instead."""

from __future__ import annotations

from collections.abc import Sequence

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from bot.chat.limits_logic import ANSWER, QUIET, SLOW_DOWN, Limit
from bot.shared.health import TIMEOUT_SECONDS, RedisHealth

PREFIX = "lukas:guards"


class SharedWindows:
    def __init__(self, health: RedisHealth) -> None:
        self._health = health
        storage = RedisStorage(
            health.url,
            key_prefix=PREFIX,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
        )
        self._limiter = MovingWindowRateLimiter(storage)

    def usable(self) -> bool:
        return self._health.usable()

    def judge(self, requests: Sequence[Sequence[Limit]]) -> list[str] | None:
        """Verdicts in order (as bot.chat.limits_logic.judge_all decides), or None when Redis failed."""
        try:
            return [self._judge(limits) for limits in requests]
        except Exception as error:  # limits raises the driver's own errors
            self._health.failed(error)
            return None

    def _judge(self, limits: Sequence[Limit]) -> str:
        items = [
            (limit, RateLimitItemPerSecond(limit.window.messages, max(round(limit.window.window_seconds), 1)))
            for limit in limits
        ]
        if not items:
            return ANSWER
        *earlier, (last, last_item) = items
        for limit, item in earlier:  # a message counts in all its windows or in none, so test these first...
            if not self._limiter.test(item, limit.key):
                return self._over(limit)
        if not self._limiter.hit(
            last_item, last.key
        ):  # ...while the last one's hit is its own test (a round trip less)
            return self._over(last)
        for limit, item in earlier:
            if not self._limiter.hit(item, limit.key):  # atomic: another replica may have filled it meanwhile
                return self._over(limit)
        return ANSWER

    def _over(self, limit: Limit) -> str:
        """SLOW_DOWN for the first message over `limit` in its period (SET NX decides for every replica), else QUIET."""
        seconds = max(round(limit.window.window_seconds), 1)
        first = self._health.client.set(f"{PREFIX}:warned:{limit.key}", b"1", nx=True, ex=seconds)
        return SLOW_DOWN if first else QUIET
