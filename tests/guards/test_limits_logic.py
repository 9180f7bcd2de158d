"""Per-person and per-conversation limits: decisions with an injected clock, state kept by the test."""

from __future__ import annotations

import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot.chat.channels_logic import limits_entry
from bot.chat.limits_logic import (
    ANSWER,
    QUIET,
    SLOW_DOWN,
    Limit,
    Rules,
    WindowState,
    budget_reached,
    judge,
    judge_all,
    rules_for,
)
from bot.config.guards_schema import Window
from bot.config.loader import parse_config
from tests.harness import deep_merge
from tests.helpers import SHIPPED_CONFIG

PERSON = Window(messages=20, window_seconds=600)
CONVERSATION = Window(messages=60, window_seconds=600)


class Limiter:
    """The windows as the database or Redis would keep them, for judging one message after another."""

    def __init__(self) -> None:
        self.states: dict[str, WindowState] = {}

    def check(self, rules: Rules, *, conversation: int, now: float) -> str:
        verdict, changed = judge(limits=rules.limits(conversation), states=self.states, now=now)
        self.states.update(changed)
        return verdict


def rules(*, user: str = "U0ANNA", admin: bool = False, strict: Window | None = None) -> Rules:
    """A DM's rules (the global windows), or with `strict` those of channel C0STRICT's own per-person window."""
    return rules_for(
        user_id=user,
        is_admin=admin,
        per_person=strict or PERSON,
        person_scope="C0STRICT" if strict else "global",
        per_conversation=CONVERSATION,
        conversation_scope="global",
    )


def check(limiter: Limiter, *, now: float, user: str = "U0ANNA", conversation: int = 1, admin: bool = False) -> str:
    return limiter.check(rules(user=user, admin=admin), conversation=conversation, now=now)


def test_a_flood_of_100_messages_in_a_minute_gets_20_answers_and_one_slow_down_line() -> None:
    limiter = Limiter()
    verdicts = [check(limiter, now=i * 0.6, conversation=i % 3) for i in range(100)]
    assert verdicts[:20] == [ANSWER] * 20
    assert verdicts[20] == SLOW_DOWN
    assert verdicts[21:] == [QUIET] * 79


def test_the_person_can_talk_again_once_old_answers_leave_the_window_and_is_warned_again() -> None:
    limiter = Limiter()
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
    limiter = Limiter()
    verdicts = [check(limiter, now=float(i), admin=True) for i in range(61)]
    assert verdicts[:60] == [ANSWER] * 60
    assert verdicts[60] == SLOW_DOWN


def test_other_people_are_not_held_back_by_one_flooding_person() -> None:
    limiter = Limiter()
    for i in range(25):
        check(limiter, now=float(i), conversation=i)
    assert check(limiter, now=30.0, user="U0BEN", conversation=99) == ANSWER


def test_no_limits_configured_means_every_message_is_answered() -> None:
    none = rules_for(
        user_id="U0ANNA",
        is_admin=False,
        per_person=None,
        person_scope="global",
        per_conversation=None,
        conversation_scope="global",
    )
    assert none.limits(1) == ()
    limiter = Limiter()
    assert all(limiter.check(none, conversation=1, now=float(i)) == ANSWER for i in range(500))


STRICT = Window(messages=2, window_seconds=3600)


def test_a_dm_never_resets_a_strict_channels_limit() -> None:
    """The bug: one counter per person, pruned by whichever window was checked. A DM (global window, 600 s) pruned
    the channel's hour-long window, so the strict channel answered again."""
    limiter = Limiter()
    strict = rules(strict=STRICT)
    assert [limiter.check(strict, conversation=7, now=t) for t in (0.0, 1.0)] == [ANSWER, ANSWER]
    assert limiter.check(strict, conversation=7, now=2.0) == SLOW_DOWN
    assert check(limiter, now=700.0, conversation=1) == ANSWER  # a DM, 700 s later
    assert limiter.check(strict, conversation=7, now=701.0) == QUIET  # still within the channel's hour
    assert limiter.check(strict, conversation=7, now=3601.0) == ANSWER  # the first answer (t=0) left the hour


def test_a_strict_channel_does_not_spend_the_global_window() -> None:
    limiter = Limiter()
    strict = rules(strict=STRICT)
    for t in (0.0, 1.0):
        limiter.check(strict, conversation=7, now=t)
    assert all(check(limiter, now=10.0 + i, conversation=1) == ANSWER for i in range(20))  # the global 20 are intact


def test_messages_judged_together_see_each_other() -> None:
    limits = rules(strict=STRICT).limits(7)
    verdicts, changed = judge_all(requests=[limits] * 4, states={}, now=5.0)
    assert verdicts == [ANSWER, ANSWER, SLOW_DOWN, QUIET]
    assert changed["p:C0STRICT:U0ANNA"] == WindowState(hits=(5.0, 5.0), warned_at=5.0)


def test_each_limit_counts_in_the_window_of_the_entry_that_set_it() -> None:
    channels = {
        "C0STRICT": {"limits": {"per_person": {"messages": 2, "window_seconds": 3600}}},
        "default": {"limits": {"per_conversation": {"messages": 9, "window_seconds": 60}}},
        "dm": {"limits": {"per_person": {"messages": 5, "window_seconds": 60}}},
    }
    config = parse_config(
        yaml.safe_dump(deep_merge(yaml.safe_load(SHIPPED_CONFIG.read_text()), {"channels": channels})), env={}
    )

    def entry(channel: str, name: str) -> str:
        return limits_entry(config=config, channel_id=channel, is_dm=channel.startswith("D"), name=name)

    assert [entry("C0STRICT", "per_person"), entry("C0STRICT", "per_conversation")] == ["C0STRICT", "default"]
    assert [entry("C0OTHER", "per_person"), entry("C0OTHER", "per_conversation")] == ["global", "default"]
    assert [entry("D0DM", "per_person"), entry("D0DM", "per_conversation")] == ["dm", "global"]


def test_budget_reached() -> None:
    assert budget_reached(spent_usd=0.0, budget_usd=None) is False
    assert budget_reached(spent_usd=4.99, budget_usd=5.0) is False
    assert budget_reached(spent_usd=5.0, budget_usd=5.0) is True
    assert budget_reached(spent_usd=0.0, budget_usd=0.0) is True


# Events: (person, where, seconds since the previous event). "D" is a DM and "G" a channel without limits of its own
# (global windows); "S" and "T" are channels with windows of their own.
OWN = {
    "S": (Window(messages=2, window_seconds=50), None),
    "T": (Window(messages=3, window_seconds=7), Window(messages=4, window_seconds=9)),
}
PERSON_SMALL, CONVERSATION_SMALL = Window(messages=3, window_seconds=30), Window(messages=5, window_seconds=20)
EVENTS = st.lists(st.tuples(st.sampled_from(["U0A", "U0B"]), st.sampled_from("DGST"), st.floats(0, 20)), max_size=40)


@given(EVENTS)
def test_each_window_counts_exactly_the_answers_in_its_own_scope_and_period(
    events: list[tuple[str, str, float]],
) -> None:
    """For any sequence of messages across channels and DMs, every window holds exactly the answered messages of its
    own scope within its own period, and never more than its limit."""
    states: dict[str, WindowState] = {}
    answered: list[tuple[float, Limit]] = []
    now = 0.0
    for user, where, gap in events:
        now += gap
        person, conversation = OWN.get(where, (None, None))
        found = rules_for(
            user_id=user,
            is_admin=False,
            per_person=person or PERSON_SMALL,
            person_scope=where if person else "global",
            per_conversation=conversation or CONVERSATION_SMALL,
            conversation_scope=where if conversation else "global",
        )
        limits = found.limits(conversation_id=ord(where))
        verdict, changed = judge(limits=limits, states=states, now=now)
        states.update(changed)
        if verdict == ANSWER:
            answered.extend((now, limit) for limit in limits)
        for limit in limits:
            own = [t for t, counted in answered if counted.key == limit.key and t > now - limit.window.window_seconds]
            kept = [t for t in states.get(limit.key, WindowState()).hits if t > now - limit.window.window_seconds]
            assert kept == own
            assert len(own) <= limit.window.messages
    assert len({limit.key for _t, limit in answered}) == len({(limit.key, limit.window) for _t, limit in answered})
