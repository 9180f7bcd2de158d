"""What a running Lukas shares through Redis, built from REDIS_URL (None: breakers and rate limits are per process;
the chat limits' windows are in the database then)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # redis, limits and their kin are imported only when REDIS_URL is set (issue 17)
    import pybreaker

    from bot.shared.guard_windows import SharedWindows
    from bot.shared.health import RedisHealth
    from bot.shared.rate_limits import SharedRateLimits


@dataclass
class SharedState:
    health: RedisHealth
    rate_limits: SharedRateLimits
    guard_windows: SharedWindows  # the chat limits' windows (bot.chat.guards)

    def breaker_storage(self, name: str, local: Any) -> pybreaker.CircuitBreakerStorage:
        from bot.shared.breaker_storage import SharedBreakerStorage

        return SharedBreakerStorage(name=name, health=self.health, local=local)


def shared_state(redis_url: str | None, *, probe_every: float = 2.0) -> SharedState | None:
    if not redis_url:
        return None
    from bot.shared.guard_windows import SharedWindows
    from bot.shared.health import RedisHealth
    from bot.shared.rate_limits import SharedRateLimits

    health = RedisHealth(redis_url, probe_every=probe_every)
    return SharedState(health=health, rate_limits=SharedRateLimits(health), guard_windows=SharedWindows(health))
