"""The limits' windows in a real Redis ($LUKAS_TEST_REDIS_URL): the same verdicts as the database's, counted in all
of a message's windows or in none."""

from __future__ import annotations

from bot.chat.limits_logic import ANSWER, QUIET, SLOW_DOWN, Limit
from bot.config.guards_schema import Window
from bot.shared.guard_windows import SharedWindows
from bot.shared.health import RedisHealth


def person(window: Window) -> Limit:
    return Limit("p:global:U0ANNA", window)


def conversation(number: int) -> Limit:
    return Limit(f"c:global:{number}", Window(messages=1, window_seconds=600))


def test_a_window_answers_its_limit_then_one_slow_down_line(redis_url: str) -> None:
    windows = SharedWindows(RedisHealth(redis_url))
    two = person(Window(messages=2, window_seconds=600))
    assert windows.judge([[two]] * 4) == [ANSWER, ANSWER, SLOW_DOWN, QUIET]
    assert windows.judge([[], [two]]) == [ANSWER, QUIET]  # a message without limits is always answered


def test_a_message_held_back_by_one_window_is_not_counted_in_the_others(redis_url: str) -> None:
    windows = SharedWindows(RedisHealth(redis_url))
    two = person(Window(messages=2, window_seconds=600))
    verdicts = windows.judge(
        [[two, conversation(1)], [two, conversation(1)], [two, conversation(2)], [two, conversation(3)]]
    )
    # The second message (its conversation full) did not use up Anna's window, so the third is answered.
    assert verdicts == [ANSWER, SLOW_DOWN, ANSWER, SLOW_DOWN]


def test_an_unreachable_redis_gives_no_verdicts() -> None:
    windows = SharedWindows(RedisHealth("redis://127.0.0.1:1/0"))
    assert windows.judge([[person(Window(messages=2, window_seconds=600))]]) is None  # the database judges instead
