"""HTTP mode: Bolt's POST /slack/events plus GET /healthz, on aiohttp. Socket Mode: GET /healthz only."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


def build_health_app(*, health: HealthCheck) -> web.Application:
    """Only GET /healthz (Socket Mode: events arrive over the socket, and this port must not take any)."""

    async def healthz(_request: web.Request) -> web.Response:
        try:
            healthy, details = await health()
        except Exception as exc:  # a health check must answer, whatever broke
            log.exception("health check failed")
            healthy, details = False, {"error": type(exc).__name__}
        return web.json_response({"ok": healthy, **details}, status=200 if healthy else 503)

    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_get("/healthz", healthz)
    return app


def build_web_app(bolt_app: AsyncApp, *, health: HealthCheck) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        try:
            bolt_request = await to_bolt_request(request)
        except (ValueError, AttributeError, TypeError) as exc:  # bodies Slack never sends (not JSON, not an object)
            log.warning("rejected a malformed request to /slack/events: %s", type(exc).__name__)
            return web.json_response({"error": "malformed request"}, status=400)
        bolt_response = await bolt_app.async_dispatch(bolt_request)
        if bolt_response.status == 401:
            log.warning("rejected a request to /slack/events: bad or stale signature")
        return await to_aiohttp_response(bolt_response)

    app = build_health_app(health=health)
    app.router.add_post("/slack/events", slack_events)
    return app


async def start_http(app: web.Application, *, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
