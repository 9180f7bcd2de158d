"""Guards end to end: signed events into a running Lukas, stand-in Slack and LLM, a real database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import update

from bot.slack.sanitise_logic import JOINER
from bot.store.models import Message
from tests.harness import mention_event, message_event, new_ts, running_lukas
from tests.providers.standins import StreamingLLM, call_text, streamed_text

EVIL = (
    "Hi <@U0ANNA>! <!channel> <!here> <!everyone> <!subteam^S0TEAM|@research> ask <@U0EVE>, "
    "read <https://evil.example/login|docs.python.org> or [the guide](https://evil.example/guide)"
)
SAFE = (
    f"Hi <@U0ANNA>! @{JOINER}channel @{JOINER}here @{JOINER}everyone @{JOINER}research ask someone, "
    "read docs.python.org (https://evil.example/login) or the guide (https://evil.example/guide)"
)


async def test_special_mentions_and_disguised_links_never_reach_slack(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        h.llm.reply = EVIL
        await h.send(message_event(text="please ping everyone"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
        await h.settle()
        assert h.slack.calls_to("chat.postMessage")[0].text == SAFE
        reply = (await h.messages())[-1]
        assert (reply.sender, reply.content) == ("bot", SAFE)  # what is stored is what was posted


async def test_streamed_replies_are_sanitised_in_every_piece(tmp_path: Path, database_url: str) -> None:
    overrides = {"streaming": {"enabled": True, "flush_interval_seconds": 0.05}}
    llm = StreamingLLM(reply=EVIL)
    llm.stream_chunk_delay = 0.02
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=overrides) as h:
        await h.send(mention_event(text="ping them all", ts=new_ts()))
        await h.wait_until(lambda: bool(h.slack.calls_to("chat.stopStream")))
        await h.settle()
        assert h.slack.calls_to("chat.appendStream"), "the reply should grow in several steps"
        pieces = [call_text(c) for c in h.slack.calls if c.method.startswith("chat.")]
        joined = "".join(pieces)
        for forbidden in ("<!channel>", "<!here>", "<!everyone>", "<!subteam", "<@U0EVE>", "|docs.python.org>", "]("):
            assert forbidden not in joined, forbidden
        assert streamed_text(h.slack, "C0GENERAL") == SAFE
        assert (await h.messages())[-1].content == SAFE


PEELED = "Hi team <<<<!a>!b>!c>!channel>, ask <[](@U0EVE<<<!a>!b>!c>)>"  # each pass once made the next one's token
PEELED_SAFE = "Hi team &lt;&lt;&lt;&lt;!a>!b>!c>!channel>, ask &lt;@U0EVE&lt;&lt;&lt;!a>!b>!c>>"


async def test_a_reply_built_to_be_peeled_reaches_slack_inert(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        h.llm.reply = PEELED
        await h.send(message_event(text="please ping everyone"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
        await h.settle()
        assert h.slack.calls_to("chat.postMessage")[0].text == PEELED_SAFE
        assert (await h.messages())[-1].content == PEELED_SAFE


async def test_a_streamed_reply_built_to_be_peeled_reaches_slack_inert(tmp_path: Path, database_url: str) -> None:
    overrides = {"streaming": {"enabled": True, "flush_interval_seconds": 0.05}}
    llm = StreamingLLM(reply="Hello there team, " + PEELED)
    llm.stream_chunk_delay = 0.02
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=overrides) as h:
        await h.send(mention_event(text="ping them all", ts=new_ts()))
        await h.wait_until(lambda: bool(h.slack.calls_to("chat.stopStream")))
        await h.settle()
        assert h.slack.calls_to("chat.appendStream"), "the reply should grow in several steps"
        joined = "".join(call_text(c) for c in h.slack.calls if c.method.startswith("chat."))
        assert "<!" not in joined and "<@" not in joined
        assert streamed_text(h.slack, "C0GENERAL") == "Hello there team, " + PEELED_SAFE
        assert (await h.messages())[-1].content == "Hello there team, " + PEELED_SAFE


async def test_a_flooding_person_gets_one_slow_down_line_and_nothing_is_lost(tmp_path: Path, database_url: str) -> None:
    overrides = {"limits": {"per_person": {"messages": 3, "window_seconds": 600}}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        for i in range(12):
            status, _ = await h.send(message_event(text=f"message {i}", user="U0ANNA"))
            assert status == 200
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) >= 4)
        await h.settle()
        # Someone else in another DM is not held back.
        await h.send(message_event(text="hello", user="U0BEN", channel="D0BEN"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) >= 5)
        await h.settle()

        assert len(h.llm.chat_requests) == 4  # 3 for Anna, 1 for Ben
        texts = h.slack.posted_texts()
        slow = [t for t in texts if "slow down" in t or "catch my breath" in t]
        assert len(slow) == 1 and len(texts) == 5
        rows = await h.messages()
        anna = [r for r in rows if r.sender == "user" and r.user_id == "U0ANNA"]
        assert len(anna) == 12 and all(r.reply_state == "done" for r in anna)  # all stored, none left hanging
        assert sum(1 for r in anna if r.flagged and r.flag_reason == "over a limit") == 9
        assert len([r for r in rows if r.sender == "fallback"]) == 1


async def test_a_tiny_chat_budget_makes_lukas_rest_and_tells_the_admins_once(tmp_path: Path, database_url: str) -> None:
    overrides = {"usage": {"chat_monthly_budget_usd": 0.00001}, "admins": ["U0ADMIN"]}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        await h.send(message_event(text="first"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
        await h.settle()
        assert len(h.llm.chat_requests) == 1  # under budget: answered (and now spent is over it)
        for text in ("second", "third"):
            await h.send(message_event(text=text))
            await h.settle()
        await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 3)
        assert len(h.llm.chat_requests) == 1  # never asked again
        resting = h.slack.posted_texts("D0DM")[1:]
        assert all("resting" in t or "hibernating" in t for t in resting)
        admin_dms = [c for c in h.slack.calls_to("chat.postMessage") if "chat budget" in c.text]
        assert len(admin_dms) == 1 and "usage.chat_monthly_budget_usd" in admin_dms[0].text
        status, _ = await h.command("usage", user="U0ADMIN", key="usage")
        assert status == 200
        await h.wait_until(lambda: bool(h.slack.responses("usage")))
        assert "chat budget reached" in h.slack.responses("usage")[0]["text"]


async def test_forget_erases_the_persons_text_and_it_never_reaches_the_model_again(
    tmp_path: Path, database_url: str
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        await h.send(message_event(text="my honey stash is under the blue rock"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
        await h.settle()

        await h.command("forget", user="U0NOBODY", key="nobody")
        await h.wait_until(lambda: bool(h.slack.responses("nobody")))
        assert "nothing to forget" in h.slack.responses("nobody")[0]["text"]

        await h.command("forget", user="U0ANNA", key="ask")
        await h.wait_until(lambda: bool(h.slack.responses("ask")))
        assert "1 message(s)" in h.slack.responses("ask")[0]["text"]
        assert "/lukas forget confirm" in h.slack.responses("ask")[0]["text"]
        assert (await h.messages())[0].content == "my honey stash is under the blue rock"  # nothing erased yet

        await h.command("forget confirm", user="U0ANNA", key="confirm")
        await h.wait_until(lambda: bool(h.slack.responses("confirm")))
        assert "erased the text of 1 message(s)" in h.slack.responses("confirm")[0]["text"]
        first = (await h.messages())[0]
        assert (first.content, first.token_count, first.erased_at is not None) == ("", 0, True)
        assert len(await h.llm_calls()) == 1  # the ledger stays

        await h.send(message_event(text="what did I tell you?"))
        await h.wait_until(lambda: len(h.llm.chat_requests) == 2)
        await h.settle()
        sent = str(h.llm.chat_requests[1].body["messages"])
        assert "blue rock" not in sent and "what did I tell you?" in sent


async def test_retention_erases_old_text_in_batches_and_keeps_the_ledger(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides={"retention": {"batch_size": 10}}) as h:
        assert await h.lukas.retention_once() == 0  # an empty table
        for i in range(12):
            await h.send(message_event(text=f"old news {i}"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 12)
        await h.settle()
        async with h.lukas.services.engine.begin() as connection:
            old = dt.datetime.now(dt.UTC) - dt.timedelta(days=91)
            await connection.execute(update(Message).values(created_at=old))
        await h.send(message_event(text="fresh"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 13)
        await h.settle()

        assert await h.lukas.retention_once() == 24  # 12 questions + 12 replies, in three batches of 10
        rows = await h.messages()
        assert [r.content for r in rows if r.erased_at is None] == ["fresh", rows[-1].content]
        assert all(r.content == "" for r in rows if r.erased_at is not None)
        assert len([c for c in await h.llm_calls() if c.purpose == "chat"]) == 13  # (plus a summary: memory)
        assert await h.lukas.retention_once() == 0  # nothing twice
