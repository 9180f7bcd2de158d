"""Health in Socket Mode: is the socket to Slack up? /healthz answers 503 once it has been down longer than
`grace_seconds` (a reconnect takes a few seconds and is not worth a container restart)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

GRACE_SECONDS = 30.0
POLL_SECONDS = 2.0


def socket_verdict(*, connected: bool, down_since: float | None, now: float, grace_seconds: float) -> tuple[bool, str]:
    """(healthy, what to report). Pure."""
    if connected:
        return True, "connected"
    if down_since is None:
        return True, "connecting"
    down_for = max(0.0, now - down_since)
    return down_for <= grace_seconds, f"disconnected for {down_for:.0f} s"


class SocketHealth:
    """Tracks the socket's state from polls of the Socket Mode client's `is_connected()`."""

    def __init__(self, *, grace_seconds: float = GRACE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_seconds = grace_seconds
        self._clock = clock
        self.connected = False
        self.down_since: float | None = clock()  # not connected yet: counts as down from the start

    def observe(self, connected: bool) -> None:
        """Record a poll; logs each change once (lost: WARNING, back: INFO)."""
        if connected and not self.connected:
            if self._was_up:
                log.info("Socket Mode connection to Slack is back")
            self.down_since = None
            self._was_up = True
        elif not connected and self.connected:
            log.warning("Socket Mode connection to Slack lost; reconnecting")
            self.down_since = self._clock()
        self.connected = connected

    _was_up = False  # connected at least once (the first connect is not a "comeback")

    def verdict(self) -> tuple[bool, str]:
        return socket_verdict(
            connected=self.connected, down_since=self.down_since, now=self._clock(), grace_seconds=self.grace_seconds
        )

    async def watch(self, is_connected: Callable[[], Awaitable[bool]], *, interval: float = POLL_SECONDS) -> None:
        """Poll until cancelled. A failing poll counts as disconnected."""
        while True:
            try:
                connected = bool(await is_connected())
            except Exception as exc:
                log.debug("Socket Mode state check failed: %s", type(exc).__name__)
                connected = False
            self.observe(connected)
            await asyncio.sleep(interval)


def socket_client_probe(handler: Any) -> Callable[[], Awaitable[bool]]:
    """`is_connected` of the Socket Mode client behind Bolt's AsyncSocketModeHandler."""

    async def probe() -> bool:
        return bool(await handler.client.is_connected())

    return probe
