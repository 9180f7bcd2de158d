"""auth.test before serving: transient failures are retried (and Bolt never drops the first event because of
them); a token Slack refuses stops Lukas with a message saying what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.errors import StartupError
from bot.runtime import Lukas
from bot.settings import load_settings
from tests.harness import SIGNING_SECRET, message_event, running_lukas, write_config
from tests.standins.slack_api import SlackStandIn


async def test_a_transient_auth_test_failure_is_retried_before_serving(tmp_path: Path, database_url: str) -> None:
    slack = SlackStandIn()
    async with slack:
        slack.fail("auth.test", "internal_error", times=2, status=500)
        async with running_lukas(tmp_path, database_url, slack=slack) as h:
            assert [c.ok for c in slack.calls_to("auth.test")][-3:] == [False, False, True]
            calls_before = len(slack.calls_to("auth.test"))
            status, _ = await h.send(message_event(text="first words"))
            await h.settle()
            assert status == 200
            assert len(slack.calls_to("chat.postMessage")) == 1  # the first event was answered, not dropped
            assert len(slack.calls_to("auth.test")) == calls_before  # Bolt reused the checked answer


async def test_a_refused_token_stops_lukas_with_a_clear_message(tmp_path: Path) -> None:
    async with SlackStandIn() as slack:
        slack.fail("auth.test", "invalid_auth", times=100)
        path = write_config(tmp_path / "config.yml", llm_base_url="http://127.0.0.1:9/v1")
        settings = load_settings(
            {
                "SLACK_BOT_TOKEN": "xoxb-revoked",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'lukas.db'}",
            },
            port=0,
        )
        lukas = Lukas(settings, LiveConfig(load_config(path, env={}), path=path))
        try:
            with pytest.raises(StartupError, match="invalid_auth") as caught:
                await lukas.start(host="127.0.0.1", port=0)
            assert "Bot User OAuth Token" in str(caught.value) and "xoxb-revoked" not in str(caught.value)
            assert len(slack.calls_to("auth.test")) == 1  # not retried: retrying never helps
        finally:
            await lukas.stop()
