"""An asyncio-correct circuit breaker on top of pybreaker (which has no asyncio support of its own).

`with breaker.calling(): await ...` is what makes pybreaker count an awaited failure (DESIGN.md).
Concurrent calls are not serialised; while half-open, exactly one trial request goes through.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pybreaker

from bot.errors import BreakerOpen

log = logging.getLogger(__name__)


class _StateLogger(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: ModelBreaker) -> None:
        self._owner = owner

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state, new_state) -> None:  # type: ignore[no-untyped-def]
        old = old_state.name if old_state else "none"
        if new_state.name == pybreaker.STATE_OPEN:
            self._owner.activations += 1
            log.error(
                "circuit breaker %s: %s -> open; answering with fallback lines for %ss", cb.name, old, cb.reset_timeout
            )
        else:
            log.warning("circuit breaker %s: %s -> %s", cb.name, old, new_state.name)


class ModelBreaker:
    def __init__(
        self, *, name: str, fail_max: int, reset_seconds: float, ignore: Callable[[BaseException], bool]
    ) -> None:
        self.activations = 0
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_seconds, exclude=[ignore], listeners=[_StateLogger(self)], name=name
        )
        self._trial_running = False

    @property
    def state(self) -> str:
        return self._breaker.current_state

    @property
    def failures(self) -> int:
        return self._breaker.fail_counter

    def configure(self, *, fail_max: int, reset_seconds: float) -> None:
        self._breaker.fail_max = fail_max
        self._breaker.reset_timeout = reset_seconds

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Run the body under the breaker; raise BreakerOpen without running it when open."""
        trial = self.state != pybreaker.STATE_CLOSED
        if trial and self._trial_running:
            raise BreakerOpen(f"{self._breaker.name}: trial request already in flight")
        if trial:
            self._trial_running = True
        try:
            try:
                with self._breaker.calling():
                    yield
            except pybreaker.CircuitBreakerError as exc:
                raise BreakerOpen(f"{self._breaker.name}: {exc}", tripped_by=exc.__context__) from None
        finally:
            if trial:
                self._trial_running = False
