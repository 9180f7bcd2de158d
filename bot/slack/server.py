"""HTTP mode: Bolt's POST /slack/events plus GET /healthz, on aiohttp. Socket Mode: GET /healthz only.

Intake is hardened before Bolt sees a request (bot/slack/intake_logic.py decides, in this order): oversized bodies
are answered 400, requests whose signature headers or signature do not verify 401, and only then are signed bodies
nested too deeply answered 400. Each is logged as one short line (method, length, reason), never with its body
(Bolt's own "invalid signature" log line would carry the whole body). Slow senders are cut (build_web_app,
start_http), so they hold neither a connection for long nor the shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.slack.intake_logic import MAX_BODY_BYTES, refusal

log = logging.getLogger(__name__)

BODY_SECONDS = 10.0  # a request body must arrive within this after its headers (see build_web_app)
IDLE_SECONDS = 75.0  # a connection without a complete request for this long is closed (see start_http)
LINGER_SECONDS = 1.0  # the unread rest of a refused body is read and dropped for at most this long (start_http)

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
    body_seconds: float = BODY_SECONDS,
) -> web.Application:
    """Every request's signature is checked here, once: Bolt's own check is off (bot/runtime.py). `direct` takes
    the message events without Bolt's dispatch (bot/slack/listeners.direct_intake); the rest goes to Bolt.

    A body still arriving `body_seconds` after its headers is cut: the connection is dropped without an answer
    (Slack sends a body at once and stops waiting after 3 s). When the app shuts down, every body still arriving
    is cut at once, so slow senders cannot hold the shutdown."""
    arriving: set[asyncio.Timeout] = set()
    stopping = False

    async def slack_events(request: web.Request) -> web.Response:
        declared = request.content_length or 0
        if declared > MAX_BODY_BYTES:
            return _rejected(request, length=declared, reason=f"body over {MAX_BODY_BYTES} bytes", status=400)
        try:
            async with asyncio.timeout(body_seconds) as deadline:
                arriving.add(deadline)
                try:
                    body = await request.read()
                finally:
                    arriving.discard(deadline)
        except web.HTTPRequestEntityTooLarge:
            return _rejected(request, length=declared, reason=f"body over {MAX_BODY_BYTES} bytes", status=400)
        except TimeoutError:
            reason = "still arriving as Lukas stops" if stopping else f"not complete within {body_seconds:g} s"
            return _cut(request, reason=f"body {reason}")
        refused = refusal(
            body=body,
            content_type=request.headers.get("Content-Type", ""),
            timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
            signature=request.headers.get("X-Slack-Signature", ""),
            secret=signing_secret,
            now=time.time(),
        )
        if refused is not None:
            return _rejected(request, length=len(body), reason=refused.reason, status=refused.status)
        if direct is not None and "json" in (request.content_type or ""):
            try:
                payload = json.loads(body.decode("utf-8"))  # as json_depth read it: UTF-8, no UTF-16 guess
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

    async def cut_arriving_bodies(_app: web.Application) -> None:
        nonlocal stopping
        stopping = True
        now = asyncio.get_running_loop().time()
        for deadline in arriving:
            if not deadline.expired():  # on_shutdown runs again in AppRunner.cleanup()
                deadline.reschedule(now)

    async def prometheus(_request: web.Request) -> web.Response:
        assert metrics is not None
        body = await metrics()
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = build_health_app(health=health)
    app.router.add_post("/slack/events", slack_events)
    app.on_shutdown.append(cut_arriving_bodies)
    if metrics is not None:
        app.router.add_get("/metrics", prometheus)
    return app


def _cut(request: web.Request, *, reason: str) -> web.Response:
    """Drop a connection whose body is still arriving; the response is never sent (the transport is gone)."""
    log.warning("cut POST /slack/events (%d bytes declared): %s", request.content_length or 0, reason)
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=408)


async def start_http(
    app: web.Application, *, port: int, host: str = "0.0.0.0", idle_seconds: float = IDLE_SECONDS
) -> web.AppRunner:
    """aiohttp has no deadline for a request's headers; its keep-alive timeout is the nearest thing: it also runs
    from the moment a connection opens and closes it if no complete request has arrived by then. `idle_seconds`
    (75 s, aiohttp's former default) still outlasts the usual 60 s idle timeout of proxies and load balancers.
    aiohttp reads the rest of a body a handler refused unread (over 1 MiB) so the client sees its 400; 10 s of
    that by default, which also held the shutdown: LINGER_SECONDS bounds both."""
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=idle_seconds,
        lingering_time=LINGER_SECONDS,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
