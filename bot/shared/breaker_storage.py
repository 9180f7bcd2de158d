"""Breaker state in Redis (pybreaker's own CircuitRedisStorage), falling back to the in-process storage while
Redis is unreachable. One outage seen by one replica opens the breaker for all of them."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pybreaker

from bot.shared.health import RedisHealth

# CircuitRedisStorage logs a traceback for every failed Redis call; RedisHealth says it once instead.
logging.getLogger("pybreaker").setLevel(logging.CRITICAL)
NAMESPACE = "lukas:breaker"


class SharedBreakerStorage(pybreaker.CircuitBreakerStorage):
    def __init__(self, *, name: str, health: RedisHealth, local: Any) -> None:
        super().__init__("lukas-shared")
        self._name = name
        self._health = health
        self._local = local  # the in-process storage (bot.breaker's clocked one), used while Redis is away
        self._shared: pybreaker.CircuitRedisStorage | None = None

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

    @property
    def state(self) -> str:
        return str(self._store().state)

    @state.setter
    def state(self, state: str) -> None:
        self._store().state = state

    def increment_counter(self) -> None:
        self._store().increment_counter()

    def reset_counter(self) -> None:
        self._store().reset_counter()

    def increment_success_counter(self) -> None:
        self._store().increment_success_counter()

    def reset_success_counter(self) -> None:
        self._store().reset_success_counter()

    @property
    def counter(self) -> int:
        return int(self._store().counter)

    @property
    def success_counter(self) -> int:
        return int(self._store().success_counter)

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
