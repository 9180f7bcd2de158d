"""The one circuit breaker, on top of pybreaker: model calls (async) and contract checks (sync) both use it.

pybreaker has no asyncio support of its own: `with breaker.calling(): await ...` is what makes it count an
awaited failure (DESIGN.md). Concurrent calls are not serialised; while half-open, exactly one trial goes through.
Time comes from an injectable clock (pybreaker reads the wall clock), so cool-downs are testable and immune to
wall-clock jumps.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pybreaker

from bot.errors import BreakerOpen

CLOSED, OPEN, HALF_OPEN = pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN
StateChange = Callable[["Breaker", str, str], None]  # (breaker, old state, new state)
# Builds a shared storage (e.g. bot.shared.breaker_storage, in Redis) from the breaker's name and its in-process one.
SharedStorage = Callable[[str, Any], pybreaker.CircuitBreakerStorage]


class _ClockedStorage(pybreaker.CircuitMemoryStorage):
    """Keeps the opening moment on `clock` and reports it as a datetime that is `elapsed` seconds ago."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(CLOSED)
        self._clock = clock
        self._opened_on_clock: float | None = None

    @property
    def opened_at(self) -> dt.datetime | None:
        if self._opened_on_clock is None:
            return None
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self._clock() - self._opened_on_clock)

    @opened_at.setter
    def opened_at(self, _wall_clock: dt.datetime) -> None:
        self._opened_on_clock = self._clock()

    def seconds_open(self) -> float | None:
        return None if self._opened_on_clock is None else self._clock() - self._opened_on_clock


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: Breaker) -> None:
        self._owner = owner

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        old = old_state.name if old_state else "none"
        if new_state.name == OPEN:
            self._owner.activations += 1
        if self._owner.on_change is not None:
            self._owner.on_change(self._owner, old, new_state.name)


class Breaker:
    """`fail_max` failures in a row open it for `reset_seconds`; then one trial call closes or re-opens it.

    `ignore(error)` → that error is not a failure (e.g. an auth error says nothing about the provider's health).
    """

    def __init__(
        self,
        *,
        name: str,
        fail_max: int,
        reset_seconds: float,
        ignore: Callable[[BaseException], bool] | None = None,
        on_change: StateChange | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedStorage | None = None,
    ) -> None:
        self.name = name
        self.activations = 0
        self.on_change = on_change
        local = _ClockedStorage(clock)
        self._storage: Any = shared(name, local) if shared is not None else local
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_seconds,
            exclude=[ignore] if ignore else [],
            listeners=[_Listener(self)],
            name=name,
            state_storage=self._storage,
        )
        self._trial_running = False

    @property
    def state(self) -> str:
        return self._breaker.current_state

    @property
    def failures(self) -> int:
        return self._breaker.fail_counter

    @property
    def reset_seconds(self) -> float:
        return float(self._breaker.reset_timeout)

    def seconds_left(self) -> float:
        """How long an open breaker still refuses calls (0 when closed, or when its trial is due)."""
        opened = self._storage.seconds_open()
        if self.state != OPEN or opened is None:
            return 0.0
        return max(self.reset_seconds - opened, 0.0)

    def configure(self, *, fail_max: int, reset_seconds: float) -> None:
        self._breaker.fail_max = fail_max
        self._breaker.reset_timeout = reset_seconds

    @contextmanager
    def calling(self) -> Iterator[None]:
        """Run the body under the breaker; raise BreakerOpen without running it when open.

        A body whose failure trips the breaker raises BreakerOpen with `tripped_by` set to that failure.
        """
        trial = self.state != CLOSED
        if trial and self._trial_running:
            raise BreakerOpen(f"{self.name}: trial request already in flight")
        if trial:
            self._trial_running = True
        try:
            try:
                with self._breaker.calling():
                    yield
            except pybreaker.CircuitBreakerError as exc:
                raise BreakerOpen(f"{self.name}: {exc}", tripped_by=exc.__context__) from None
        finally:
            if trial:
                self._trial_running = False

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """`calling()` for awaited work: `async with breaker.guard(): await ...`."""
        with self.calling():
            yield
