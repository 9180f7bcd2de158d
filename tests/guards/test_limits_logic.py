"""Per-person and per-conversation limits: decisions with an injected clock."""

from __future__ import annotations

from bot.chat.limits_logic import ANSWER, QUIET, SLOW_DOWN, MessageLimiter, budget_reached
from bot.config.guards_schema import Window

PERSON = Window(messages=20, window_seconds=600)
CONVERSATION = Window(messages=60, window_seconds=600)


def check(
    limiter: MessageLimiter, *, now: float, user: str = "U0ANNA", conversation: int = 1, admin: bool = False
) -> str:
    return limiter.check(
        user_id=user,
        conversation_id=conversation,
        is_admin=admin,
        per_person=PERSON,
        per_conversation=CONVERSATION,
        now=now,
    )


def test_a_flood_of_100_messages_in_a_minute_gets_20_answers_and_one_slow_down_line() -> None:
    limiter = MessageLimiter()
    verdicts = [check(limiter, now=i * 0.6, conversation=i % 3) for i in range(100)]
    assert verdicts[:20] == [ANSWER] * 20
    assert verdicts[20] == SLOW_DOWN
    assert verdicts[21:] == [QUIET] * 79


def test_the_person_can_talk_again_once_old_answers_leave_the_window_and_is_warned_again() -> None:
    limiter = MessageLimiter()
    for i in range(20):
        assert check(limiter, now=float(i)) == ANSWER
    assert check(limiter, now=30.0) == SLOW_DOWN
    assert check(limiter, now=31.0) == QUIET
    assert check(limiter, now=600.5) == ANSWER  # the first answer (t=0) left the window
    assert check(limiter, now=601.0) == ANSWER  # and the second (t=1)
    assert check(limiter, now=601.5) == QUIET  # full again, but the last slow-down line was < 600 s ago
    for i in range(18):  # t=2..19 leave the window; 18 new answers fill it again
        assert check(limiter, now=640.0 + i) == ANSWER
    assert check(limiter, now=660.0) == SLOW_DOWN  # 630 s after the last line: one more slow-down line


def test_admins_are_exempt_from_the_per_person_limit_but_not_the_conversation_limit() -> None:
    limiter = MessageLimiter()
    verdicts = [check(limiter, now=float(i), admin=True) for i in range(61)]
    assert verdicts[:60] == [ANSWER] * 60
    assert verdicts[60] == SLOW_DOWN


def test_other_people_are_not_held_back_by_one_flooding_person() -> None:
    limiter = MessageLimiter()
    for i in range(25):
        check(limiter, now=float(i), conversation=i)
    assert check(limiter, now=30.0, user="U0BEN", conversation=99) == ANSWER


def test_no_limits_configured_means_every_message_is_answered() -> None:
    limiter = MessageLimiter()
    for i in range(500):
        verdict = limiter.check(
            user_id="U0ANNA", conversation_id=1, is_admin=False, per_person=None, per_conversation=None, now=float(i)
        )
        assert verdict == ANSWER


def test_budget_reached() -> None:
    assert budget_reached(spent_usd=0.0, budget_usd=None) is False
    assert budget_reached(spent_usd=4.99, budget_usd=5.0) is False
    assert budget_reached(spent_usd=5.0, budget_usd=5.0) is True
    assert budget_reached(spent_usd=0.0, budget_usd=0.0) is True
