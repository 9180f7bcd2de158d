"""What stands between Lukas and a provider besides retries: a circuit breaker per name:model and the provider's
rate limit, both shared by every replica through Redis when REDIS_URL is set (bot.shared), else this process's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.breaker import OPEN, Breaker
from bot.errors import LukasError
from bot.llm import retry_logic as outcomes
from bot.llm.chain_logic import ProviderSpec
from bot.llm.rate_limit import SlidingWindowLimiter
from bot.shared.state import SharedState

log = logging.getLogger("bot.llm.gateway")  # the gateway's log lines, as admins know them
Sleep = Callable[[float], Awaitable[None]]

_NOT_COUNTED_BY_BREAKER = frozenset(
    {
        outcomes.AUTH,
        outcomes.INVALID_REQUEST,
        outcomes.CONTENT_FILTER,
        outcomes.CONTEXT_LENGTH,
        outcomes.MODEL_NOT_FOUND,
    }
)


class Throttled(LukasError):
    """Our own rate limit would make this request wait longer than allowed."""


def _log_breaker_change(breaker: Breaker, old: str, new: str) -> None:
    if new == OPEN:
        log.error(
            "circuit breaker %s: %s -> open; answering with fallback lines for %ss",
            breaker.name,
            old,
            f"{breaker.reset_seconds:g}",
        )
    else:
        log.warning("circuit breaker %s: %s -> %s", breaker.name, old, new)


def not_counted(error: BaseException) -> bool:
    """What the breaker does not count: the caller's own faults, a stream we closed on purpose, a request the
    client-side rate limit never sent."""
    if isinstance(error, GeneratorExit | asyncio.CancelledError | Throttled):
        return True
    return outcomes.classify_error(error) in _NOT_COUNTED_BY_BREAKER


class ProviderGuards:
    """Breakers and rate limiters, one per provider, kept across config reloads (a changed setting applies to the
    existing one)."""

    def __init__(self, *, shared: SharedState | None = None) -> None:
        self.shared = shared  # REDIS_URL: breakers and rate limits shared with every other replica
        self.limit_sleep: Sleep = asyncio.sleep  # rate-limit waits are about real time
        self.rate_window_seconds = 60.0  # what "per minute" means for the rate limits (tests shorten it)
        self._breakers: dict[str, Breaker] = {}
        self._limiters: dict[str, SlidingWindowLimiter] = {}

    # ----- breakers: one per name:model, so a new model starts with a fresh breaker
    def breaker(self, spec: ProviderSpec) -> Breaker:
        breaker = self._breakers.get(spec.key)
        if breaker is None:
            breaker = Breaker(
                name=spec.key,
                fail_max=spec.fail_max,
                reset_seconds=spec.reset_seconds,
                ignore=not_counted,
                on_change=_log_breaker_change,
                shared=self.shared.breaker_storage if self.shared is not None else None,
            )
            self._breakers[spec.key] = breaker
        else:
            breaker.configure(fail_max=spec.fail_max, reset_seconds=spec.reset_seconds)
        return breaker

    def breaker_states(self) -> dict[str, str]:
        return {key: breaker.state for key, breaker in self._breakers.items()}

    def limiter(self, spec: ProviderSpec) -> SlidingWindowLimiter | None:
        limits = spec.rate_limit
        if limits is None:
            return None
        limiter = self._limiters.get(spec.name)
        if limiter is None:
            limiter = SlidingWindowLimiter(
                requests=limits.requests_per_minute, tokens=limits.tokens_per_minute, window=self.rate_window_seconds
            )
            self._limiters[spec.name] = limiter
        else:
            limiter.configure(requests=limits.requests_per_minute, tokens=limits.tokens_per_minute)
            limiter.window = self.rate_window_seconds
        return limiter

    async def wait_for_room(self, spec: ProviderSpec, limiter: SlidingWindowLimiter, estimate: int) -> None:
        """The provider's rate limit: shared by every replica through Redis when it is there, else this process's."""
        limits = spec.rate_limit
        assert limits is not None
        if self.shared is not None and self.shared.rate_limits.usable():
            room = await self.shared.rate_limits.acquire(
                provider=spec.name,
                requests=limits.requests_per_minute,
                tokens=limits.tokens_per_minute,
                cost=estimate,
                window=self.rate_window_seconds,
                max_wait=limits.max_wait_seconds,
                sleep=self.limit_sleep,
            )
            if room is False:
                raise Throttled()  # not an attempt: nothing was sent
            if room is True:
                return
        delay = limiter.reserve(tokens=estimate, max_wait=limits.max_wait_seconds)
        if delay is None:
            raise Throttled()
        if delay > 0:
            log.debug("rate limit of %s: waiting %.2fs", spec.name, delay)
            await self.limit_sleep(delay)
