"""HTTP mode: Bolt's POST /slack/events plus GET /healthz, on aiohttp. Socket Mode: GET /healthz only.

Intake is hardened before Bolt sees a request: oversized or deeply nested bodies are answered 400, and requests
whose signature does not verify are answered 401; each is logged as one short line (method, length, reason),
never with its body (Bolt's own "invalid signature" log line would carry the whole body).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from bot.slack.intake_logic import MAX_BODY_BYTES, body_problem

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


def _rejected(request: web.Request, *, length: int, reason: str, status: int) -> web.Response:
    log.warning("rejected %s /slack/events (%d bytes): %s", request.method, length, reason)
    return web.json_response({"error": "invalid request" if status == 401 else "malformed request"}, status=status)


def build_health_app(*, health: HealthCheck) -> web.Application:
    """Only GET /healthz (Socket Mode: events arrive over the socket, and this port must not take any)."""

    async def healthz(_request: web.Request) -> web.Response:
        try:
            healthy, details = await health()
        except Exception as exc:  # a health check must answer, whatever broke
            log.exception("health check failed")
            healthy, details = False, {"error": type(exc).__name__}
        return web.json_response({"ok": healthy, **details}, status=200 if healthy else 503)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/healthz", healthz)
    return app


def build_web_app(
    bolt_app: AsyncApp,
    *,
    health: HealthCheck,
    signing_secret: str,
    metrics: Callable[[], Awaitable[bytes]] | None = None,
    direct: Callable[[Any], Awaitable[bool]] | None = None,
) -> web.Application:
    """Every request's signature is checked here, once: Bolt's own check is off (bot/runtime.py). `direct` takes
    the message events without Bolt's dispatch (bot/slack/listeners.direct_intake); the rest goes to Bolt."""
    verifier = SignatureVerifier(signing_secret)

    async def slack_events(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            length = request.content_length or 0
            return _rejected(request, length=length, reason=f"body over {MAX_BODY_BYTES} bytes", status=400)
        problem = body_problem(body=body, content_type=request.content_type or "")
        if problem is not None:
            return _rejected(request, length=len(body), reason=problem, status=400)
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp or not signature:
            return _rejected(request, length=len(body), reason="no Slack signature headers", status=401)
        if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            reason = "stale timestamp" if not _fresh(timestamp) else "bad signature"
            return _rejected(request, length=len(body), reason=reason, status=401)
        if direct is not None and "json" in (request.content_type or ""):
            try:
                payload = json.loads(body)
            except ValueError:
                return _rejected(request, length=len(body), reason="malformed body (not JSON)", status=400)
            try:
                if await direct(payload):
                    return web.Response(status=200)
            except Exception as error:  # as Bolt's error handler: a 500, so Slack delivers the event again
                log.error(
                    "could not take an event (%s: %s); Slack will redeliver it",
                    type(error).__name__,
                    str(error).splitlines()[0] if str(error) else "",
                )
                return web.json_response({"error": "could not take the event"}, status=500)
        try:
            bolt_request = await to_bolt_request(request)
            bolt_response = await bolt_app.async_dispatch(bolt_request)
        except (ValueError, AttributeError, TypeError, RecursionError) as exc:  # bodies Slack never sends
            return _rejected(request, length=len(body), reason=f"malformed body ({type(exc).__name__})", status=400)
        return await to_aiohttp_response(bolt_response)

    async def prometheus(_request: web.Request) -> web.Response:
        assert metrics is not None
        body = await metrics()
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = build_health_app(health=health)
    app.router.add_post("/slack/events", slack_events)
    if metrics is not None:
        app.router.add_get("/metrics", prometheus)
    return app


def _fresh(timestamp: str) -> bool:
    try:
        return abs(time.time() - int(timestamp)) <= 60 * 5
    except ValueError:
        return False


async def start_http(app: web.Application, *, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
