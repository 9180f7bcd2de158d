"""Called into a thread: Lukas reads its earlier messages once (conversations.replies at the Slack stand-in) and
the model sees them in order, with names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.store.models import Conversation, Message
from tests.harness import mention_event, message_event, running_lukas
from tests.standins.slack_api import SlackStandIn

CHANNEL = "C0LAB"
ROOT = "1750000000.000100"


def _eight_message_thread(slack: SlackStandIn) -> None:
    slack.add_user("U0ANNA", display_name="Anna")
    slack.add_user("U0BEN", real_name="Ben Okafor")
    slack.add_user("U0CHLOE", display_name="Chloe")
    add = slack.add_thread_message
    add(CHANNEL, ROOT, user="U0ANNA", text="Our grant report is due Friday.", ts=ROOT)
    add(CHANNEL, ROOT, user="U0BEN", text="I can write the methods section.", ts="1750000001.000100")
    add(CHANNEL, ROOT, bot_id="B0CI", bot_profile={"name": "CI Bot"}, text="Build 42 passed", ts="1750000002.000100")
    add(CHANNEL, ROOT, user="U0CHLOE", text="Figures are in the shared drive, <@U0ANNA>.", ts="1750000003.000100")
    add(CHANNEL, ROOT, user="UBOT", bot_id="BBOT", text="Go team, I believe in you!", ts="1750000004.000100")
    add(
        CHANNEL,
        ROOT,
        user="U0ANNA",
        text="",
        files=[{"name": "draft.pdf", "title": "Draft v2"}],
        ts="1750000005.000100",
    )
    add(CHANNEL, ROOT, user="U0BEN", text="Methods done.", ts="1750000006.000100")
    add(CHANNEL, ROOT, user="U0CHLOE", text="Should we add the pilot data?", ts="1750000007.000100")


async def test_a_mention_in_a_thread_brings_its_eight_earlier_messages_in_order_with_names(
    tmp_path: Path, database_url: str
) -> None:
    slack = SlackStandIn()
    async with slack:
        _eight_message_thread(slack)
        async with running_lukas(tmp_path, database_url, slack=slack) as h:
            mention_ts = "1750000008.000100"
            await h.send(mention_event(text="what do you think?", channel=CHANNEL, thread_ts=ROOT, ts=mention_ts))
            await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
            await h.settle()

            (read,) = h.slack.calls_to("conversations.replies")
            assert (read.params["channel"], read.params["ts"], read.params["latest"]) == (CHANNEL, ROOT, mention_ts)
            sent = h.llm.chat_requests[0].body["messages"]
            assert sent[0]["role"] == "system"
            assert sent[1:] == [
                {"role": "user", "content": "Anna: Our grant report is due Friday."},
                {"role": "user", "content": "Ben Okafor: I can write the methods section."},
                {"role": "user", "content": "CI Bot (bot): Build 42 passed"},
                {"role": "user", "content": "Chloe: Figures are in the shared drive, @Anna."},
                {"role": "assistant", "content": "Go team, I believe in you!"},
                {"role": "user", "content": "Anna: [file: Draft v2]"},
                {"role": "user", "content": "Ben Okafor: Methods done."},
                {"role": "user", "content": "Chloe: Should we add the pilot data?"},
                {"role": "user", "content": "Anna: what do you think?"},
            ]
            assert h.slack.calls_to("chat.postMessage")[0].params["thread_ts"] == ROOT

            rows = await h.messages()
            context = [m for m in rows if m.context]
            assert len(context) == 8 and all(m.reply_state is None and m.token_count for m in context)
            assert next(m.slack_ts for m in context) == ROOT
            (conversation,) = await h.conversations()
            assert conversation.thread_read_at is not None

            # A follow-up: the context is used again, never re-read from Slack, and never answered on its own.
            await h.send(message_event(text="and the budget?", channel=CHANNEL, thread_ts=ROOT))
            await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 2)
            await h.settle()
            assert len(h.slack.calls_to("conversations.replies")) == 1
            follow_up = h.llm.chat_requests[1].body["messages"]
            assert follow_up[1]["content"] == "Anna: Our grant report is due Friday."
            assert follow_up[-1]["content"].endswith("and the budget?")
            assert len(h.slack.calls_to("chat.postMessage")) == 2


async def test_a_thousand_message_thread_reads_a_few_pages_and_keeps_what_the_budget_can_use(
    tmp_path: Path, database_url: str
) -> None:
    slack = SlackStandIn()
    async with slack:
        slack.add_user("U0ANNA", display_name="Anna")
        slack.add_thread_message(CHANNEL, ROOT, user="U0ANNA", text="The long thread starts here.", ts=ROOT)
        for i in range(1, 1000):
            slack.add_thread_message(CHANNEL, ROOT, user="U0ANNA", text=f"note {i}: " + "data " * 20)
        overrides = {"llm": {"context_budget_tokens": 1500, "max_tokens": 100}}
        async with running_lukas(tmp_path, database_url, slack=slack, overrides=overrides) as h:
            await h.send(mention_event(text="sum it up?", channel=CHANNEL, thread_ts=ROOT, ts="1760000000.000100"))
            await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
            await h.settle()

            reads = h.slack.calls_to("conversations.replies")
            assert len(reads) == 5 and [c.params.get("cursor") for c in reads][1:] == ["200", "400", "600", "800"]
            context = [m for m in await h.messages() if m.context]
            assert 1 < len(context) <= 19
            assert sum(m.token_count for m in context) <= 1500 - 100
            assert context[-1].content.startswith("note 999:")  # the newest before the mention are kept
            sent = h.llm.chat_requests[0].body["messages"]
            from bot.tokens.counting import count_message

            assert sum(count_message(m["content"], model="gpt-4.1-mini") for m in sent) + 3 + 100 <= 1500
            assert sent[-1]["content"].endswith("sum it up?")


async def test_an_unreadable_thread_is_answered_from_the_mention_alone_with_one_log_line(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    slack = SlackStandIn()
    async with slack:
        slack.add_thread_message(CHANNEL, ROOT, user="U0ANNA", text="secret plans", ts=ROOT)
        slack.fail("conversations.replies", "missing_scope")
        async with running_lukas(tmp_path, database_url, slack=slack) as h:
            with caplog.at_level(logging.INFO):
                await h.send(mention_event(text="hello?", channel=CHANNEL, thread_ts=ROOT, ts="1750000009.000100"))
                await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
                await h.settle()
            sent = h.llm.chat_requests[0].body["messages"]
            assert len(sent) == 2 and sent[-1]["content"].endswith("hello?")
            lines = [r for r in caplog.records if "cannot read the thread" in r.getMessage()]
            assert len(lines) == 1 and "missing_scope" in lines[0].getMessage()
            async with h.lukas.services.sessions() as session:
                read_at = await session.scalar(select(Conversation.thread_read_at))
                assert read_at is not None  # not tried again on every message
                assert (await session.scalars(select(Message).where(Message.context))).all() == []
            await h.send(message_event(text="still there?", channel=CHANNEL, thread_ts=ROOT))
            await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 2)
            assert len(h.slack.calls_to("conversations.replies")) == 1


async def test_a_top_level_mention_and_a_dm_never_read_a_thread(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        await h.send(mention_event(text="hi there", channel=CHANNEL))
        await h.send(message_event(text="hello in a DM"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 2)
        await h.settle()
        assert h.slack.calls_to("conversations.replies") == []
        assert all(c.thread_read_at is not None for c in await h.conversations())
