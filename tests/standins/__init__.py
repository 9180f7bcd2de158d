"""Loopback stand-ins for the services Lukas talks to: an OpenAI-compatible API and Slack's Web API."""

from __future__ import annotations

from aiohttp import web


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve `app` on 127.0.0.1 on a free port. Returns the runner (for `stop`) and the port; a short shutdown
    timeout so a test's teardown never waits on a client that hung up."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def stop(runner: web.AppRunner | None) -> None:
    """Stop what `serve_on_loopback` started (nothing when it never started)."""
    if runner:
        await runner.cleanup()
