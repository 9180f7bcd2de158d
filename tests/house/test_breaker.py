"""The one breaker (bot.breaker) used by the model gateway and the contract engine."""

from __future__ import annotations

import asyncio

import pytest

from bot.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from bot.errors import BreakerOpen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(breaker: Breaker, error: Exception) -> BreakerOpen | Exception:
    try:
        with breaker.calling():
            raise error
    except Exception as exc:
        return exc
    raise AssertionError("the error was swallowed")


def test_opens_after_fail_max_in_a_row_and_recovers_after_the_clock_moves() -> None:
    clock, changes = Clock(), []
    breaker = Breaker(
        name="m", fail_max=2, reset_seconds=30, clock=clock, on_change=lambda b, old, new: changes.append((old, new))
    )
    assert isinstance(_fail(breaker, ValueError("1")), ValueError)
    tripping = _fail(breaker, ValueError("2"))
    assert isinstance(tripping, BreakerOpen) and isinstance(tripping.tripped_by, ValueError)
    assert (breaker.state, breaker.activations) == (OPEN, 1)
    assert breaker.seconds_left() == pytest.approx(30)

    ran = []
    with pytest.raises(BreakerOpen) as refused, breaker.calling():
        ran.append(1)
    assert not ran and refused.value.tripped_by is None

    clock.now += 30  # the cool-down is on the injected clock, not the wall clock
    assert breaker.seconds_left() == 0
    with breaker.calling():
        ran.append(1)
    assert ran == [1] and breaker.state == CLOSED
    assert changes == [("closed", OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_success_resets_the_count_and_ignored_errors_never_count() -> None:
    breaker = Breaker(name="m", fail_max=2, reset_seconds=30, ignore=lambda e: isinstance(e, PermissionError))
    for error in (ValueError(), PermissionError(), PermissionError(), PermissionError()):
        _fail(breaker, error)
    assert breaker.failures == 0 and breaker.state == CLOSED  # the ignored errors count as successes
    _fail(breaker, ValueError())
    with breaker.calling():
        pass
    _fail(breaker, ValueError())
    assert breaker.state == CLOSED


async def test_async_guard_counts_awaited_failures_and_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = Breaker(name="m", fail_max=1, reset_seconds=10, clock=clock)
    with pytest.raises(BreakerOpen):
        async with breaker.guard():
            await asyncio.sleep(0)
            raise ConnectionError("down")
    assert breaker.state == OPEN
    clock.now += 10
    trial_started, release = asyncio.Event(), asyncio.Event()

    async def trial() -> None:
        async with breaker.guard():
            trial_started.set()
            await release.wait()

    task = asyncio.create_task(trial())
    await trial_started.wait()
    with pytest.raises(BreakerOpen, match="trial request already in flight"):
        async with breaker.guard():
            pass
    release.set()
    await task
    assert breaker.state == CLOSED
