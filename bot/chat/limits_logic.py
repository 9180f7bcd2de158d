"""Per-person and per-conversation limits, and the chat budget: decisions only (clock and figures passed in).

A message is *answered* while the person and the conversation are under their sliding-window limits. Past a
limit the first message in that window gets one slow-down line, later ones get nothing (they stay stored); only
answered messages count, so the person can talk again as soon as older answers leave the window. The windows
live in this process's memory: with several replicas each enforces its own share (documented in the README).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from bot.config.guards_schema import Window

ANSWER, SLOW_DOWN, QUIET = "answer", "slow down", "quiet"
_PRUNE_EVERY = 1024


@dataclass
class _Track:
    times: deque[float]
    warned_at: float | None = None


class _Windows:
    def __init__(self) -> None:
        self._tracks: dict[str, _Track] = {}
        self._checks = 0

    def full(self, key: str, *, window: Window, now: float) -> bool:
        track = self._tracks.get(key)
        if track is None:
            return False
        cutoff = now - window.window_seconds
        while track.times and track.times[0] <= cutoff:
            track.times.popleft()
        return len(track.times) >= window.messages

    def warn_once(self, key: str, *, window: Window, now: float) -> bool:
        """True the first time in a window a limit is hit for `key` (that message gets the slow-down line)."""
        track = self._tracks.setdefault(key, _Track(deque()))
        if track.warned_at is not None and now - track.warned_at < window.window_seconds:
            return False
        track.warned_at = now
        return True

    def add(self, key: str, now: float) -> None:
        self._tracks.setdefault(key, _Track(deque())).times.append(now)

    def prune(self, *, now: float, longest: float) -> None:
        """Forget keys with nothing in their window (memory stays bounded by the active people)."""
        self._checks += 1
        if self._checks % _PRUNE_EVERY:
            return
        stale = [
            key
            for key, track in self._tracks.items()
            if (not track.times or track.times[-1] <= now - longest)
            and (track.warned_at is None or track.warned_at <= now - longest)
        ]
        for key in stale:
            del self._tracks[key]


class MessageLimiter:
    def __init__(self) -> None:
        self._windows = _Windows()

    def check(
        self,
        *,
        user_id: str | None,
        conversation_id: int,
        is_admin: bool,
        per_person: Window | None,
        per_conversation: Window | None,
        now: float,
    ) -> str:
        """ANSWER (and counted), SLOW_DOWN (first over-limit message in the window) or QUIET."""
        limits: list[tuple[str, Window]] = []
        if per_person is not None and user_id and not is_admin:
            limits.append((f"u:{user_id}", per_person))
        if per_conversation is not None:
            limits.append((f"c:{conversation_id}", per_conversation))
        windows = self._windows
        windows.prune(now=now, longest=max((w.window_seconds for _k, w in limits), default=0.0))
        for key, window in limits:
            if windows.full(key, window=window, now=now):
                return SLOW_DOWN if windows.warn_once(key, window=window, now=now) else QUIET
        for key, _window in limits:
            windows.add(key, now)
        return ANSWER


def budget_reached(*, spent_usd: float, budget_usd: float | None) -> bool:
    """True once this month's chat spending has reached the budget (None: no budget)."""
    return budget_usd is not None and spent_usd >= budget_usd - 1e-12
