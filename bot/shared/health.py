"""Is Redis answering? One warning when it stops, one line when it is back; probed every few seconds while down,
so an unreachable Redis costs one short timeout per probe, not one per model call."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 0.25


def where(url: str) -> str:
    """host:port/db of a Redis URL, never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname or '?'}:{parts.port or 6379}{parts.path or ''}"


class RedisHealth:
    def __init__(self, url: str, *, probe_every: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.where = where(url)
        self._probe_every = probe_every
        self._clock = clock
        raw = redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)
        self.client: Any = _Watched(raw, self)
        self._raw = raw
        self._down_since: float | None = None
        self._next_probe = 0.0
        self.outages = 0

    @property
    def up(self) -> bool:
        return self._down_since is None

    def usable(self) -> bool:
        """True when shared state should be used now (probing a Redis that was down, at most every few seconds)."""
        if self._down_since is None:
            return True
        now = self._clock()
        if now >= self._next_probe:
            self._next_probe = now + self._probe_every
            try:
                self._raw.ping()
            except (RedisError, OSError):
                return False
            self._down_since = None
            log.warning("Redis at %s answers again: breakers and rate limits are shared again", self.where)
        return self._down_since is None

    def failed(self, error: BaseException) -> None:
        if self._down_since is not None:
            return
        now = self._clock()
        self._down_since, self._next_probe = now, now + self._probe_every
        self.outages += 1
        log.warning(
            "Redis at %s is unreachable (%s): breakers and rate limits are per process until it answers again; "
            "replies go on",
            self.where,
            type(error).__name__,
        )


class _Watched:
    """A Redis client that reports connection trouble to its health (and still raises, for the caller to handle)."""

    def __init__(self, client: Any, health: RedisHealth) -> None:
        self._client, self._health = client, health

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return target(*args, **kwargs)
            except (RedisError, OSError) as error:
                self._health.failed(error)
                raise RedisError(str(error)) from None

        return call
