"""Per-person and per-conversation limits, and the chat budget: decisions only (clock, figures and state passed in).

A message is *answered* while each of its windows is under its limit. Past a limit the first message in that window
gets one slow-down line, later ones get nothing (they stay stored); only answered messages count, so the person can
talk again as soon as older answers leave the window.

Every window is its own counter, named by its scope: a channel with its own `limits.per_person` counts a person's
messages there in a window of its own, and the global per-person window counts the rest (where no entry of
`channels:` sets one).
Neither ever prunes or resets the other. The state lives where every replica sees it (bot.store.guard_repo, or
Redis through bot.shared.guard_windows); this module only decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bot.config.guards_schema import Window

ANSWER, SLOW_DOWN, QUIET = "answer", "slow down", "quiet"


@dataclass(frozen=True)
class Limit:
    """One window a message is judged by: `key` names its scope and whose messages it counts."""

    key: str
    window: Window


@dataclass(frozen=True)
class WindowState:
    hits: tuple[float, ...] = ()  # when the answered messages in the window arrived, oldest first
    warned_at: float | None = None  # when the last slow-down line for this window was said


@dataclass(frozen=True)
class Rules:
    """The windows chosen for a message before its conversation is known (built at intake)."""

    person: Limit | None
    conversation_scope: str
    per_conversation: Window | None

    def limits(self, conversation_id: int) -> tuple[Limit, ...]:
        found = [self.person] if self.person is not None else []
        if self.per_conversation is not None:
            found.append(Limit(f"c:{self.conversation_scope}:{conversation_id}", self.per_conversation))
        return tuple(found)


def rules_for(
    *,
    user_id: str | None,
    is_admin: bool,
    per_person: Window | None,
    person_scope: str,
    per_conversation: Window | None,
    conversation_scope: str,
) -> Rules:
    """The windows in force for a message, each named by the config entry it comes from (`scope`: a channel's id,
    "default", "dm" or "global"), so a channel's own window and the global one never share a counter."""
    person = None
    if per_person is not None and user_id and not is_admin:
        person = Limit(f"p:{person_scope}:{user_id}", per_person)
    return Rules(person=person, conversation_scope=conversation_scope, per_conversation=per_conversation)


def pruned(state: WindowState, *, window: Window, now: float) -> WindowState:
    """The state without the answers that left `window` (only this window's own period applies)."""
    cutoff = now - window.window_seconds
    if not state.hits or state.hits[0] > cutoff:
        return state
    return replace(state, hits=tuple(t for t in state.hits if t > cutoff))


def judge(
    *, limits: Sequence[Limit], states: Mapping[str, WindowState], now: float
) -> tuple[str, dict[str, WindowState]]:
    """(verdict, the states that changed). ANSWER counts the message in every window; SLOW_DOWN (the first message
    over a full window in its period) marks that window warned; QUIET changes nothing."""
    current = {
        limit.key: pruned(states.get(limit.key, WindowState()), window=limit.window, now=now) for limit in limits
    }
    for limit in limits:
        state = current[limit.key]
        if len(state.hits) >= limit.window.messages:
            if state.warned_at is not None and now - state.warned_at < limit.window.window_seconds:
                return QUIET, {}
            return SLOW_DOWN, {limit.key: replace(state, warned_at=now)}
    return ANSWER, {key: replace(state, hits=(*state.hits, now)) for key, state in current.items()}


def judge_all(
    *, requests: Sequence[Sequence[Limit]], states: Mapping[str, WindowState], now: float
) -> tuple[list[str], dict[str, WindowState]]:
    """Judge messages that arrived together, in order (each sees the ones before it); returns every verdict and
    the states that changed."""
    seen = dict(states)
    changed: dict[str, WindowState] = {}
    verdicts = []
    for limits in requests:
        verdict, updates = judge(limits=limits, states=seen, now=now)
        seen.update(updates)
        changed.update(updates)
        verdicts.append(verdict)
    return verdicts, changed


def budget_reached(*, spent_usd: float, budget_usd: float | None) -> bool:
    """True once this month's chat spending has reached the budget (None: no budget)."""
    return budget_usd is not None and spent_usd >= budget_usd - 1e-12
