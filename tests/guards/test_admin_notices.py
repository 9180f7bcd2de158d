"""Admin DMs claimed once in the database: alerters of two replicas over one database and one Slack stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.slack.alerts import AdminAlerter, notice_key
from bot.slack.client import build_web_client
from tests.harness import REPO_CONFIG, deep_merge
from tests.standins.slack_api import SlackStandIn


def alerters(tmp_path: Path, slack: SlackStandIn, engine: AsyncEngine, count: int) -> list[AdminAlerter]:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(REPO_CONFIG.read_text()), {"admins": ["U0ADMIN"]})))
    config = LiveConfig(load_config(path), path=path)
    client = build_web_client(token="xoxb-test", api_url=slack.api_url)
    return [AdminAlerter(client=client, config=config, notices=engine) for _ in range(count)]


async def test_replicas_failing_at_once_send_one_dm_per_interval(tmp_path: Path, db_engine: AsyncEngine) -> None:
    async with SlackStandIn(latency=0.05) as slack:
        a, b = alerters(tmp_path, slack, db_engine, 2)
        sent = await asyncio.gather(*[alerter.alert("llm_model:main:gpt-9", "unknown model") for alerter in (a, a, b)])
        assert sorted(sent) == [False, False, True]
        assert slack.posted_texts() == ["unknown model"]


async def test_a_dm_nobody_received_is_not_claimed(tmp_path: Path, db_engine: AsyncEngine) -> None:
    async with SlackStandIn() as slack:
        (alerter,) = alerters(tmp_path, slack, db_engine, 1)
        slack.fail("chat.postMessage", "channel_not_found")
        assert (
            await alerter.alert("chat_budget", "budget used up", once_key="chat_budget:2026-12", lasting=True) is False
        )
        (restarted,) = alerters(tmp_path, slack, db_engine, 1)
        assert await restarted.alert("chat_budget", "budget used up", once_key="chat_budget:2026-12", lasting=True)
        assert not await alerter.alert("chat_budget", "budget used up", once_key="chat_budget:2026-12", lasting=True)
        assert slack.posted_texts() == ["budget used up"] * 2  # the failed try, then the one that went out


def test_long_keys_fit_the_column_and_stay_distinct() -> None:
    long_a, long_b = "x" * 300 + "a", "x" * 300 + "b"
    assert len(notice_key(long_a)) == 255 and notice_key(long_a) != notice_key(long_b)
    assert notice_key("chat_budget:2026-12") == "chat_budget:2026-12"
