"""Getting to Slack at start. Until Slack is reached /healthz answers 503 with the reason (and, in HTTP mode,
/slack/events answers 503 so Slack delivers again later); an unreachable Slack is one clear line a minute instead
of a traceback per try, from auth.test and from the Socket Mode client's connect loop alike."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.startup_logic import connection_problem, report_due, unreachable_line

log = logging.getLogger(__name__)
# Paths that answer while Lukas is still connecting: the health check and the metrics.
ALWAYS_SERVED = frozenset({"/healthz", "/metrics"})


class SlackConnecting:
    """Where the way to Slack stands: `pending` until the first auth.test / socket connect is done."""

    def __init__(self, *, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.pending = True
        self.step = "starting"
        self.reason = "starting"
        self._clock = clock
        self._last_report: float | None = None

    def stage(self, step: str, doing: str) -> None:
        """The call being made (`step`, e.g. auth.test) and what it is for."""
        self.step, self.reason = step, doing

    def done(self) -> None:
        if self.pending and self._last_report is not None:
            log.info("Slack reached at %s", self.url)
        self.pending = False

    def failed(self, error: BaseException | str) -> None:
        """A try that did not get through: remembered for /healthz, logged at most once a minute."""
        problem = connection_problem(error) if isinstance(error, BaseException) else None
        if problem is not None:
            line = unreachable_line(url=self.url, problem=problem)
        else:
            line = f"Slack at {self.url} did not answer as expected ({error}); retrying"
        self.reason = f"{self.step}: {line}"
        now = self._clock()
        if report_due(last=self._last_report, now=now):
            self._last_report = now
            log.warning("%s", line)

    def verdict(self) -> tuple[bool, str]:
        return (False, f"connecting to Slack: {self.reason}") if self.pending else (True, "connected")


class SocketModeLog(logging.LoggerAdapter):
    """The Socket Mode client's logger: its connect loop logs a whole traceback every ping interval while Slack
    cannot be reached; those go to SlackConnecting instead (one line a minute). Everything else passes."""

    def __init__(self, connecting: SlackConnecting) -> None:
        super().__init__(logging.getLogger("bot.slack.socket_mode"), {})
        self.connecting = connecting

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(msg, str) and msg.startswith("Failed to connect") and error is not None:
            self.connecting.failed(error)
            return
        super().log(level, msg, *args, **kwargs)


def readiness_gate(connecting: SlackConnecting) -> Callable[..., Awaitable[web.StreamResponse]]:
    """aiohttp middleware: while Slack is not reached yet, only /healthz and /metrics are served; an event is
    answered 503 (Slack sends it again) instead of going to a Bolt that has not checked its token."""

    @web.middleware
    async def gate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        if connecting.pending and request.path not in ALWAYS_SERVED:
            return web.json_response({"error": "starting: not connected to Slack yet"}, status=503)
        return await handler(request)

    return gate
