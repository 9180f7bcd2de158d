"""Guard state every replica sees and a restart keeps (issue 22): limit windows per scope, verdicts stored with the
message, admin DMs claimed once. Signed events into running Lukases over one database, stand-in Slack and LLM."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Harness, mention_event, message_event, running_lukas
from tests.replicas.helpers import FAST_LEASES, expire_leases, kill, user_rows
from tests.standins.openai_api import LLMFault, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

THREE_AN_HOUR = {"limits": {"per_person": {"messages": 3, "window_seconds": 3600}}}


def slow_downs(slack: SlackStandIn) -> list[str]:
    return [t for t in slack.posted_texts() if "slow down" in t or "catch my breath" in t]


def admin_dms(slack: SlackStandIn, words: str) -> list[Any]:
    return [c for c in slack.calls_to("chat.postMessage") if words in (c.text or "")]


async def settle(*replicas: Harness) -> None:
    for h in replicas:
        await h.settle()


async def test_one_dm_no_longer_resets_a_strict_channels_limit(tmp_path: Path, database_url: str) -> None:
    overrides = {
        "limits": {"per_person": {"messages": 20, "window_seconds": 1}},  # the global window: 1 s
        "channels": {"C0STRICT": {"limits": {"per_person": {"messages": 2, "window_seconds": 3600}}}},
    }
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        for i in range(3):
            await h.send(mention_event(text=f"question {i}", channel="C0STRICT"))
            await h.settle()
        assert len(h.llm.chat_requests) == 2 and len(slow_downs(h.slack)) == 1
        await asyncio.sleep(1.1)  # the channel's answers are older than the global window now...
        await h.send(message_event(text="a DM in between"))  # ...and a DM judged by that window
        await h.settle()
        assert len(h.llm.chat_requests) == 3
        await h.send(mention_event(text="and again in the channel", channel="C0STRICT"))
        await h.settle()
        assert len(h.llm.chat_requests) == 3  # the channel's hour is not over: no answer
        rows = [r for r in await h.messages() if r.sender == "user"]
        assert [r.verdict for r in rows] == [None, None, "slow down", None, "quiet"]


@pytest.mark.parametrize("shared", ["database", "redis"])
async def test_two_replicas_share_one_per_person_limit(
    tmp_path: Path, database_url: str, shared: str, request: pytest.FixtureRequest
) -> None:
    env = {"REDIS_URL": request.getfixturevalue("redis_url")} if shared == "redis" else {}
    slack, llm = SlackStandIn(), OpenAIStandIn()
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=THREE_AN_HOUR, env=env) as a,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=THREE_AN_HOUR, env=env) as b,
    ):
        sends = [
            replica.send(message_event(text=f"hi {i}", channel=f"D0TWO{i}")) for i, replica in enumerate([a, b] * 5)
        ]
        assert {status for status, _ in await asyncio.gather(*sends)} == {200}
        await a.wait_until(lambda: len(slack.posted_texts()) >= 4)
        await settle(a, b)
        assert len(llm.chat_requests) == 3  # each replica alone would have answered 3 (6 together)
        assert len(slow_downs(slack)) == 1 and len(slack.posted_texts()) == 4
        rows = await user_rows(a)
        assert len(rows) == 10 and all(r.reply_state == "done" for r in rows)
        assert sorted(str(r.verdict) for r in rows) == ["None"] * 3 + ["quiet"] * 6 + ["slow down"]


async def test_a_taken_over_message_is_answered_with_its_stored_verdict(tmp_path: Path, database_url: str) -> None:
    overrides = {**FAST_LEASES, "limits": {"per_person": {"messages": 1, "window_seconds": 3600}}}
    slack, llm = SlackStandIn(), OpenAIStandIn()
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=overrides) as a,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=overrides) as b,
    ):
        await a.send(message_event(text="first"))
        await a.settle()
        assert len(llm.chat_requests) == 1
        a.lukas.services.chat.schedule = lambda *_args, **_kw: False  # type: ignore[method-assign]  # A only accepts
        await a.send(message_event(text="second, over the limit"))
        await kill(a)
        await expire_leases(a)
        await b.wait_until(lambda: len(slack.posted_texts()) == 2)
        await b.settle()
        assert len(llm.chat_requests) == 1  # B answered as A judged: a slow-down line, no model call
        assert len(slow_downs(slack)) == 1
        second = (await user_rows(b))[-1]
        assert (second.verdict, second.reply_state, second.flag_reason) == ("slow down", "done", "over a limit")


async def test_a_restart_sends_no_second_budget_dm(tmp_path: Path, database_url: str) -> None:
    overrides = {"usage": {"chat_monthly_budget_usd": 0.00001}, "admins": ["U0ADMIN"]}
    slack, llm = SlackStandIn(), OpenAIStandIn()
    async with slack, llm:
        async with running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=overrides) as h:
            for text in ("first", "second"):
                await h.send(message_event(text=text))
                await h.settle()
            assert len(admin_dms(slack, "chat budget")) == 1
        async with running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=overrides) as h:
            await h.send(message_event(text="after the restart"))
            await h.wait_until(lambda: len(slack.posted_texts("D0DM")) == 3)
            await h.settle()
        assert len(llm.chat_requests) == 1
        assert len(admin_dms(slack, "chat budget")) == 1  # the restarted Lukas rests, but does not DM again


async def test_three_messages_at_once_with_an_unknown_model_dm_the_admins_once(
    tmp_path: Path, database_url: str
) -> None:
    overrides = {"admins": ["U0ADMIN"]}
    slack, llm = SlackStandIn(), OpenAIStandIn(latency=0.2)  # the three requests overlap
    llm.fault_for = lambda _body: LLMFault(status=404, code="model_not_found", message="The model does not exist")
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=overrides) as a,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=overrides) as b,
    ):
        sends = [h.send(message_event(text="hello?", channel=f"D0NF{i}")) for i, h in enumerate([a, a, a, b])]
        await asyncio.gather(*sends)
        await a.wait_until(lambda: len(slack.posted_texts()) >= 5)
        await settle(a, b)
        assert len(llm.chat_requests) == 4
        assert len(admin_dms(slack, "does not know the model")) == 1
        assert len([t for t in slack.posted_texts() if t in a.lukas.config.current.fallbacks.lines]) == 4
