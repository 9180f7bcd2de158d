"""Channel rules end to end (issue 16): a real Lukas on the stand-ins, driven by signed Slack events."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.harness import mention_event, message_event, new_ts, running_lukas

LAB, RANDOM, QUIET, NOTED = "C0LABOPS", "C0RANDOM", "C0QUIET", "C0NOTED"

RULES = {
    "channels": {
        "default": {"enabled": True},
        LAB: {"persona_addendum": "In #lab-ops you are terse and precise."},
        RANDOM: {"persona_addendum": "In #random you love puns.", "thread_follow_ups": False},
        QUIET: {"enabled": False},
        NOTED: {"enabled": False, "when_disabled": "note", "disabled_note": "Napping here 🐻 DM me instead!"},
    }
}


def system_prompt(request) -> str:  # type: ignore[no-untyped-def]
    return request.body["messages"][0]["content"]


async def test_each_channel_sends_its_own_persona_addendum(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=RULES) as h:
        await h.send(mention_event(text="status of the freezer?", channel=LAB))
        await h.wait_until(lambda: len(h.llm.chat_requests) == 1)
        await h.send(mention_event(text="tell me a joke", channel=RANDOM))
        await h.wait_until(lambda: len(h.llm.chat_requests) == 2)
        await h.send(message_event(text="hi there", channel="D0ANNA"))
        await h.wait_until(lambda: len(h.llm.chat_requests) == 3)
        await h.settle()
        lab, rand, dm = (system_prompt(r) for r in h.llm.chat_requests)
        assert lab.startswith("You are Lukas the Bear") and "\n\nIn #lab-ops you are terse and precise." in lab
        assert "In #random you love puns." in rand and "terse" not in rand
        assert "puns" not in dm and "terse" not in dm
        assert len(h.slack.posted_texts(LAB)) == 1 and len(h.slack.posted_texts(RANDOM)) == 1


async def test_a_disabled_channel_gets_no_model_call_and_no_reply(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=RULES) as h:
        status, _ = await h.send(mention_event(text="anyone home?", channel=QUIET))
        assert status == 200
        await h.send(mention_event(text="now here", channel=LAB))  # a marker: answered after the ignored one
        await h.wait_until(lambda: len(h.llm.chat_requests) == 1)
        await h.settle()
        assert h.slack.posted_texts(QUIET) == []
        assert all("precise." in system_prompt(r) for r in h.llm.chat_requests)
        assert [m.channel_id for m in await h.messages()] == [LAB, LAB]  # nothing stored for the quiet channel


async def test_a_disabled_channel_with_note_answers_once_per_thread(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=RULES) as h:
        root = new_ts()
        await h.send(mention_event(text="hello?", channel=NOTED, ts=root))
        await h.send(mention_event(text="hello again?", channel=NOTED, thread_ts=root))
        await h.send(mention_event(text="a new thread", channel=NOTED))
        await h.wait_until(lambda: len(h.slack.posted_texts(NOTED)) == 2)
        await h.lukas.services.chat.drain(2)
        posts = h.slack.calls_to("chat.postMessage")
        assert [p.text for p in posts] == ["Napping here 🐻 DM me instead!"] * 2
        assert posts[0].params["thread_ts"] == root and posts[1].params["thread_ts"] != root
        assert h.llm.chat_requests == []


async def test_thread_follow_ups_off_answers_only_mentions(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=RULES) as h:
        root = new_ts()
        await h.send(mention_event(text="pun please", channel=RANDOM, ts=root))
        await h.wait_until(lambda: len(h.slack.posted_texts(RANDOM)) == 1)
        await h.wait_until(lambda: h.lukas.services.chat.in_flight == 0)
        await h.send(message_event(text="another one", channel=RANDOM, thread_ts=root))  # no mention
        await h.send(mention_event(text="one more", channel=RANDOM, thread_ts=root))
        await h.wait_until(lambda: len(h.slack.posted_texts(RANDOM)) == 2)
        await h.settle()
        assert len(h.llm.chat_requests) == 2
        assert h.llm.chat_requests[1].body["messages"][-1]["content"].endswith("one more")


async def test_a_channel_chain_picks_its_providers(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        base = h.llm.base_url
        providers = {
            name: {"provider": "openai", "model": model, "api_base": base, "context_window": 100000,
                   "price": {"input": 1, "output": 1}}
            for name, model in (("main", "gpt-4.1-mini"), ("cheap", "gpt-4o-mini"))
        }  # fmt: skip
        config = {"providers": providers, "chat_chain": ["main"], "channels": {RANDOM: {"chain": ["cheap"]}}}
        h.lukas.config.reload_text(_with(h, config))
        await h.send(mention_event(text="hi", channel=RANDOM))
        await h.wait_until(lambda: len(h.llm.chat_requests) == 1)
        await h.send(mention_event(text="hi", channel=LAB))
        await h.wait_until(lambda: len(h.llm.chat_requests) == 2)
        await h.settle()
        assert [r.body["model"] for r in h.llm.chat_requests] == ["gpt-4o-mini", "gpt-4.1-mini"]
        assert [(c.provider, c.model) for c in await h.llm_calls()] == [
            ("cheap", "gpt-4o-mini"),
            ("main", "gpt-4.1-mini"),
        ]


async def test_a_rule_for_a_channel_lukas_is_not_in_is_reported(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.slack.channel_check")
    async with running_lukas(tmp_path, database_url, overrides=RULES) as h:
        h.slack.responders["conversations.info"] = lambda params: (
            {"ok": True, "channel": {"id": params["channel"], "is_member": params["channel"] != QUIET}}
        )
        problems = await h.lukas.channel_check.check(h.lukas.config.current)
        assert problems == [
            f"channels.{QUIET}: Lukas is not a member of this channel, so its rule does nothing; invite him there "
            "(/invite @Lukas) or remove the entry"
        ]
        assert f"channels.{QUIET}: Lukas is not a member" in caplog.text


def _with(h, extra):  # type: ignore[no-untyped-def]
    import yaml

    from tests.harness import deep_merge

    raw = yaml.safe_load(h.lukas.config.file.read_text())
    text = yaml.safe_dump(deep_merge(raw, extra))
    h.lukas.config.file.write_text(text)
    return text


async def test_channel_limits_override_the_global_ones(tmp_path: Path, database_url: str) -> None:
    rules = {"channels": {LAB: {"limits": {"per_person": {"messages": 1, "window_seconds": 600}}}}}
    async with running_lukas(tmp_path, database_url, overrides=rules) as h:
        await h.send(mention_event(text="first", channel=LAB))
        await h.wait_until(lambda: len(h.slack.posted_texts(LAB)) == 1)
        await h.send(mention_event(text="second", channel=LAB))
        await h.wait_until(lambda: len(h.slack.posted_texts(LAB)) == 2)
        await h.send(mention_event(text="elsewhere", channel=RANDOM))  # the global limit (20 per 10 min) applies
        await h.wait_until(lambda: len(h.slack.posted_texts(RANDOM)) == 1)
        await h.settle()
        assert [r.body["messages"][-1]["content"].split(": ")[-1] for r in h.llm.chat_requests] == [
            "first",
            "elsewhere",
        ]
        assert h.slack.posted_texts(LAB)[1] in h.lukas.config.current.limits.slow_down_lines
