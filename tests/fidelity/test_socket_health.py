"""/healthz in Socket Mode: served on PORT, 503 once the socket to Slack has been down for more than 30 s."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.runtime import Lukas
from bot.settings import load_settings
from bot.slack.socket_health import SocketHealth, socket_verdict
from bot.store import migrate
from tests.harness import write_config
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


def test_verdict() -> None:
    assert socket_verdict(connected=True, down_since=None, now=100, grace_seconds=30) == (True, "connected")
    assert socket_verdict(connected=False, down_since=80, now=100, grace_seconds=30) == (
        True,
        "disconnected for 20 s",
    )
    assert socket_verdict(connected=False, down_since=69, now=100, grace_seconds=30) == (
        False,
        "disconnected for 31 s",
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_healthz_follows_the_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'lukas.db'}"
    await asyncio.to_thread(migrate.upgrade, database_url)
    async with SlackStandIn() as slack, OpenAIStandIn() as llm:
        config_path = write_config(tmp_path / "config.yml", llm_base_url=llm.base_url)
        settings = load_settings(
            env={
                "SLACK_BOT_TOKEN": "xoxb-test-token",
                "SLACK_APP_TOKEN": "xapp-test-token",
                "SLACK_API_URL": slack.api_url,
                "OPENAI_API_KEY": "sk-test-key-000000000000",
                "DATABASE_URL": database_url,
                "LUKAS_CONFIG": str(config_path),
            }
        )
        lukas = Lukas(settings, LiveConfig(load_config(config_path), path=config_path))
        clock = FakeClock()
        lukas.socket_health = SocketHealth(clock=clock)
        socket_up = True

        async def probe() -> bool:
            return socket_up

        caplog.set_level(logging.INFO, logger="bot")
        port = await lukas.serve_http(host="127.0.0.1", port=0)
        lukas.watch_socket(probe)
        lukas.connecting.done()  # what start() does once the first connect is made
        try:
            async with aiohttp.ClientSession() as http:

                async def healthz() -> tuple[int, dict]:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        return response.status, await response.json()

                await asyncio.sleep(0.05)  # the watcher's first poll
                status, body = await healthz()
                assert (status, body["socket"], body["database"]) == (200, "connected", "ok")

                socket_up = False
                lukas.socket_health.observe(False)  # what the next poll sees
                clock.now += 10
                status, body = await healthz()
                assert (status, body["socket"]) == (200, "disconnected for 10 s")  # a reconnect is not an outage

                clock.now += 21
                status, body = await healthz()
                assert (status, body["ok"], body["socket"]) == (503, False, "disconnected for 31 s")

                socket_up = True
                lukas.socket_health.observe(True)
                status, body = await healthz()
                assert (status, body["socket"]) == (200, "connected")

                async with http.post(f"http://127.0.0.1:{port}/slack/events", data=b"{}") as response:
                    assert response.status in (404, 405)  # Socket Mode: this port takes no events
        finally:
            await lukas.stop(drain_seconds=1)
        lost = [r for r in caplog.records if "connection to Slack lost" in r.getMessage()]
        back = [r for r in caplog.records if "connection to Slack is back" in r.getMessage()]
        assert len(lost) == 1 and lost[0].levelno == logging.WARNING and len(back) == 1
