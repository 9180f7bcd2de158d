"""Breaker state in Redis (pybreaker's own CircuitRedisStorage), falling back to the in-process storage while
Redis is unreachable. One outage seen by one replica opens the breaker for all of them.

pybreaker reads the state twice and resets the failure counter once per call, each a blocking Redis round trip on
the event loop. Reads are kept for READ_CACHE_SECONDS and a reset of a counter known to be zero is skipped, so a
replica sees another's trip within a second and a healthy provider costs about one round trip a second, not three
per message. Every write goes through at once."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import pybreaker

from bot.shared.health import RedisHealth

# CircuitRedisStorage logs a traceback for every failed Redis call; RedisHealth says it once instead.
logging.getLogger("pybreaker").setLevel(logging.CRITICAL)
NAMESPACE = "lukas:breaker"
READ_CACHE_SECONDS = 1.0


class SharedBreakerStorage(pybreaker.CircuitBreakerStorage):
    def __init__(self, *, name: str, health: RedisHealth, local: Any) -> None:
        super().__init__("lukas-shared")
        self._name = name
        self._health = health
        self._local = local  # the in-process storage (bot.breaker's clocked one), used while Redis is away
        self._shared: pybreaker.CircuitRedisStorage | None = None
        self._read_at: dict[str, tuple[float, Any]] = {}  # what was last read from (or written to) Redis, and when
        self._clock = time.monotonic

    def _store(self) -> Any:
        if not self._health.usable():
            return self._local
        if self._shared is None:
            try:
                self._shared = pybreaker.CircuitRedisStorage(
                    pybreaker.STATE_CLOSED, self._health.client, namespace=f"{NAMESPACE}:{self._name}"
                )
            except Exception:
                return self._local
        return self._shared

    @property
    def shared(self) -> bool:
        return self._store() is self._shared and self._shared is not None

    def _cached(self, key: str, read: Callable[[Any], Any]) -> Any:
        store = self._store()
        if store is self._local:
            return read(store)
        kept = self._read_at.get(key)
        if kept is not None and self._clock() - kept[0] < READ_CACHE_SECONDS:
            return kept[1]
        value = read(store)
        self._read_at[key] = (self._clock(), value)
        return value

    def _wrote(self, key: str, value: Any = None) -> None:
        if value is None:
            self._read_at.pop(key, None)
        else:
            self._read_at[key] = (self._clock(), value)

    @property
    def state(self) -> str:
        return str(self._cached("state", lambda store: store.state))

    @state.setter
    def state(self, state: str) -> None:
        self._store().state = state
        self._wrote("state", state)

    def increment_counter(self) -> None:
        self._store().increment_counter()
        self._wrote("counter")

    def reset_counter(self) -> None:
        if self._cached("counter", lambda store: store.counter) == 0:
            return
        self._store().reset_counter()
        self._wrote("counter", 0)

    def increment_success_counter(self) -> None:
        self._store().increment_success_counter()
        self._wrote("success_counter")

    def reset_success_counter(self) -> None:
        self._store().reset_success_counter()
        self._wrote("success_counter", 0)

    @property
    def counter(self) -> int:
        return int(self._cached("counter", lambda store: store.counter))

    @property
    def success_counter(self) -> int:
        return int(self._cached("success_counter", lambda store: store.success_counter))

    @property
    def opened_at(self) -> dt.datetime | None:
        return self._store().opened_at

    @opened_at.setter
    def opened_at(self, now: dt.datetime) -> None:
        self._store().opened_at = now

    def seconds_open(self) -> float | None:
        store = self._store()
        if store is self._local:
            return self._local.seconds_open()
        opened = store.opened_at
        return None if opened is None else (dt.datetime.now(dt.UTC) - opened).total_seconds()
