"""Client-side rate limits per provider (seed 003): wait for room instead of provoking 429s.

A sliding-window limiter with reservations: at most `requests` requests and `tokens` tokens start in any window
of `window` seconds. A caller reserves the earliest start that keeps every window within the limits and sleeps
until then, so concurrent callers are only held back as far as the limits require (never serialised behind a
lock). Starts are handed out in arrival order, which keeps the bookkeeping exact: a new start never precedes an
earlier one, so checking the window that ends at the new start is enough. A reservation that would wait longer
than the caller allows is not made (the chain moves on to its next provider).

No I/O and no sleeping here: the clock is injected, and the caller sleeps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    def __init__(
        self,
        *,
        requests: int | None,
        tokens: int | None,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests = requests
        self.tokens = tokens
        self.window = window
        self._clock = clock
        self._starts: deque[tuple[float, int]] = deque()  # (start time, tokens), in start order

    def configure(self, *, requests: int | None, tokens: int | None) -> None:
        self.requests, self.tokens = requests, tokens

    def reserve(self, *, tokens: int, max_wait: float) -> float | None:
        """Seconds to wait before starting (0: now), or None when that would exceed `max_wait` (nothing reserved).

        A request estimated at more tokens than `tokens` allows in a whole window can never start: None.
        """
        now = self._clock()
        while self._starts and self._starts[0][0] <= now - self.window:
            self._starts.popleft()
        if self.tokens is not None and tokens > self.tokens:
            return None
        start = self._earliest_start(max(now, self._starts[-1][0]) if self._starts else now, tokens)
        if start - now > max_wait:
            return None
        self._starts.append((start, tokens))
        return start - now

    def _earliest_start(self, earliest: float, tokens: int) -> float:
        # Candidates: `earliest`, and each moment an earlier start leaves the window (start + window).
        candidates = [earliest] + [t + self.window for t, _ in self._starts if t + self.window > earliest]
        for start in candidates:
            in_window = [used for t, used in self._starts if t > start - self.window]
            requests_ok = self.requests is None or len(in_window) + 1 <= self.requests
            tokens_ok = self.tokens is None or sum(in_window) + tokens <= self.tokens
            if requests_ok and tokens_ok:
                return start
        return candidates[-1]  # unreachable: at the last candidate every earlier start has left the window

    def in_flight(self) -> int:
        """Reservations still inside the window (for status output and tests)."""
        now = self._clock()
        return sum(1 for t, _ in self._starts if t > now - self.window)
