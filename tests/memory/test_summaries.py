"""Rolling summaries end to end: written in the background through the chat gateway, carried in the prompt, kept
within the budget, rebuilt without erased messages. The stand-in's summary answer only echoes its input (the old
notes plus the first new line), so a fact in the summary really came from the conversation."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.store.models import ConversationSummary, Message, utcnow
from bot.tokens.counting import count_message
from tests.harness import Harness, deep_merge, message_event, running_lukas
from tests.standins.openai_api import LLMFault, OpenAIStandIn

FACT = "My fern is called Fernando and he lives on the lab windowsill."


def is_summary_request(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"].startswith("You keep Lukas's private notes")


def echo_notes(body: dict[str, Any]) -> str:
    """Old notes + the first new message line: nothing the input did not say."""
    user = body["messages"][1]["content"]
    notes, _, new = user.partition("New messages, oldest first:\n")
    old = notes.removeprefix("Notes so far:").strip()
    first = new.splitlines()[0] if new else ""
    return " ".join(part for part in ((old if old != "(none)" else ""), first) if part)


# Long conversations; a due summary is written as soon as no answer is in flight (the quiet time has its own test).
NO_LIMITS: dict[str, Any] = {
    "limits": {"per_person": None, "per_conversation": None},
    "memory": {"refresh_quiet_seconds": 0},
}


def lukas(tmp_path: Path, database_url: str, llm: OpenAIStandIn, overrides: dict[str, Any] | None = None) -> Any:
    return running_lukas(tmp_path, database_url, llm=llm, overrides=deep_merge(NO_LIMITS, overrides or {}))


def scripted_llm() -> OpenAIStandIn:
    llm = OpenAIStandIn()
    llm.reply = lambda body: echo_notes(body) if is_summary_request(body) else f"Reply {len(body['messages'])}."
    return llm


async def converse(h: Harness, texts: list[str]) -> None:
    memory = h.lukas.services.chat.memory
    for text in texts:
        before = len(h.slack.calls_to("chat.postMessage"))
        await h.send(message_event(text=text))
        await h.wait_until(lambda n=before: len(h.slack.calls_to("chat.postMessage")) == n + 1)
        await h.settle()
        await h.wait_until(lambda: memory.in_flight == 0)


def answers(h: Harness) -> list[dict[str, Any]]:
    return [r.body for r in h.llm.chat_requests if not is_summary_request(r.body)]


async def summary_row(h: Harness) -> ConversationSummary | None:
    rows = await h.rows(ConversationSummary)
    return rows[0] if rows else None


async def test_a_60_message_dm_remembers_its_first_fact_within_the_budget(tmp_path: Path, database_url: str) -> None:
    overrides = {"llm": {"context_budget_tokens": 1200, "max_tokens": 100}}
    llm = scripted_llm()
    async with llm, lukas(tmp_path, database_url, llm, overrides) as h:
        h.slack.add_user("U0ANNA", display_name="Anna")
        await converse(h, [FACT] + [f"Message {i} about the weather and the bees." for i in range(2, 61)])

        last = answers(h)[-1]["messages"]
        assert last[-1]["content"] == "Anna: Message 60 about the weather and the bees."
        assert last[1]["role"] == "system" and last[1]["content"].startswith("Earlier in this conversation: ")
        assert "Fernando" in last[1]["content"]
        assert all("Fernando" not in m["content"] for m in last[2:])  # the fact itself fell out long ago
        used = sum(count_message(m["content"], model="gpt-4.1-mini") for m in last) + 3
        assert used + 100 <= 1200

        row = await summary_row(h)
        assert row is not None and "Fernando" in row.text and row.message_count > 20
        covered_ids = [m.id for m in await h.messages() if m.id <= row.through_message_id]
        assert row.first_message_id == covered_ids[0]
        calls = [c for c in await h.llm_calls() if c.purpose == "summary"]
        assert calls and all(c.conversation_id is not None and c.outcome == "ok" and c.cost_usd > 0 for c in calls)
        assert len([c for c in await h.llm_calls() if c.purpose == "chat"]) == 60
        summary_bodies = [r.body for r in h.llm.chat_requests if is_summary_request(r.body)]
        assert all(b.get("max_completion_tokens", b.get("max_tokens")) == 250 for b in summary_bodies)
        # The answers decided from what they had loaded: a refresh read the conversation only when one was due (and
        # once more after each, for the next chunk), never after every reply.
        outcomes = [o for _c, o in h.lukas.services.chat.memory.outcomes]
        assert outcomes.count("extended") == len(summary_bodies)
        assert outcomes.count("none") <= outcomes.count("extended")


async def test_summaries_are_made_after_the_reply_never_before_it(tmp_path: Path, database_url: str) -> None:
    llm = scripted_llm()
    async with llm, lukas(tmp_path, database_url, llm) as h:
        await converse(h, [f"note {i}" for i in range(1, 15)])  # 28 messages: 8 fell out of a 20-message window
        order = ["summary" if is_summary_request(r.body) else "answer" for r in h.llm.chat_requests]
        first = order.index("summary")
        assert order[first - 1] == "answer" and order.count("answer") == 14
        # The summary was asked for only after the answer it followed was posted to Slack.
        summary_at = next(r.at for r in h.llm.chat_requests if is_summary_request(r.body))
        posted_before = [c for c in h.slack.calls_to("chat.postMessage") if c.at < summary_at]
        assert len(posted_before) == first


async def test_a_failed_or_refused_summary_keeps_the_old_one_and_logs_once(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm = scripted_llm()
    overrides = {"contracts": {"banned_terms": ["kumquat"]}}
    async with llm, lukas(tmp_path, database_url, llm, overrides) as h:
        await converse(h, [FACT] + [f"note {i}" for i in range(2, 15)])
        before = await summary_row(h)
        assert before is not None and "Fernando" in before.text

        llm.fault_for = lambda body: LLMFault(500) if is_summary_request(body) else None
        with caplog.at_level(logging.WARNING):
            await converse(h, [f"more {i}" for i in range(1, 10)])
        after = await summary_row(h)
        assert after is not None and (after.text, after.through_message_id) == (before.text, before.through_message_id)
        warnings = [r for r in caplog.records if "could not refresh the summary" in r.getMessage()]
        assert len(warnings) == 1
        failed = [c for c in await h.llm_calls() if c.purpose == "summary" and c.outcome != "ok"]
        assert len(failed) == 1 and failed[0].attempts == 3  # the same retries as any chat call, then a pause
        memory = h.lukas.services.chat.memory
        memory._failing = {key: at - 1000 for key, at in memory._failing.items()}  # the pause is over
        assert len(h.slack.calls_to("chat.postMessage")) == 23  # every person still got an answer

        # Refused by the output checks (a banned term): not saved either.
        llm.fault_for = None
        llm.reply = lambda body: "Anna loves kumquat jam." if is_summary_request(body) else "ok"
        await converse(h, ["one more"])
        still = await summary_row(h)
        assert still is not None and still.text == before.text
        assert [o for _c, o in memory.outcomes][-1] == "failed"


async def test_an_erased_message_is_taken_out_of_the_summary(tmp_path: Path, database_url: str) -> None:
    llm = scripted_llm()
    async with llm, lukas(tmp_path, database_url, llm) as h:
        await converse(h, [FACT] + [f"note {i}" for i in range(2, 15)])
        row = await summary_row(h)
        assert row is not None and "Fernando" in row.text
        async with h.lukas.services.sessions() as session:  # what /lukas forget and Slack deletions do
            first = await session.scalar(select(Message).where(Message.content == FACT))
            assert first is not None
            await session.execute(update(Message).where(Message.id == first.id).values(content="", erased_at=utcnow()))
            await session.commit()
        await converse(h, ["what do you remember?"])
        rebuilt = await summary_row(h)
        assert rebuilt is not None and "Fernando" not in rebuilt.text
        assert any(o == "rebuilt" for _c, o in h.lukas.services.chat.memory.outcomes)
        requests = [r.body for r in h.llm.chat_requests if is_summary_request(r.body)]
        assert "Fernando" not in requests[-1]["messages"][1]["content"]
        assert all("Fernando" not in m["content"] for m in answers(h)[-1]["messages"])


async def test_a_conversation_erased_while_its_summary_is_written_keeps_no_summary(
    tmp_path: Path, database_url: str
) -> None:
    llm = scripted_llm()
    async with llm, lukas(tmp_path, database_url, llm) as h:
        await converse(h, [FACT] + [f"note {i}" for i in range(2, 13)])
        assert await summary_row(h) is None  # 24 messages, 4 fell out of the window: not due yet
        erase_now = asyncio.Event()

        def note_summary_request(body: dict[str, Any]) -> None:  # called as the request arrives, before the latency
            if is_summary_request(body):
                erase_now.set()

        llm.fault_for = note_summary_request  # type: ignore[assignment]
        llm.latency = 0.5  # the summary call is still running when everything is erased
        await h.send(message_event(text="note 13"))  # 26: due
        await asyncio.wait_for(erase_now.wait(), timeout=10)
        async with h.lukas.services.sessions() as session:
            await session.execute(update(Message).values(content="", erased_at=utcnow()))
            await session.commit()
        await h.settle()
        memory = h.lukas.services.chat.memory
        await h.wait_until(lambda: memory.in_flight == 0)
        assert await summary_row(h) is None
        assert [o for _c, o in memory.outcomes][-2:] == ["erased meanwhile", "none"]
        assert all(c.purpose in ("chat", "summary") for c in await h.llm_calls())


async def test_memory_off_sends_no_summary_calls(tmp_path: Path, database_url: str) -> None:
    llm = scripted_llm()
    async with llm, lukas(tmp_path, database_url, llm, {"memory": {"enabled": False}}) as h:
        await converse(h, [f"note {i}" for i in range(1, 16)])
        assert not any(is_summary_request(r.body) for r in h.llm.chat_requests)
        assert await summary_row(h) is None
        assert [m["role"] for m in answers(h)[-1]["messages"]].count("system") == 1


async def test_forgetting_a_person_deletes_the_summaries_that_held_their_words(
    tmp_path: Path, database_url: str
) -> None:
    from bot.store import privacy_repo

    llm = scripted_llm()
    async with llm, lukas(tmp_path, database_url, llm) as h:
        await converse(h, [FACT] + [f"note {i}" for i in range(2, 15)])
        assert (row := await summary_row(h)) is not None and "Fernando" in row.text
        erased, _last = await h.lukas.services.chat.run_db(
            lambda s: privacy_repo.erase_user_batch(s, "U0ANNA", after_id=0, batch_size=1000)
        )
        assert erased == 14
        assert await summary_row(h) is None  # gone with the words, in the same transaction
        await converse(h, ["hello again"])
        assert all("Fernando" not in m["content"] for m in answers(h)[-1]["messages"])
        again = await summary_row(h)
        assert again is None or "Fernando" not in again.text


async def test_a_message_deleted_in_slack_takes_the_summary_with_it(tmp_path: Path, database_url: str) -> None:
    from tests.fidelity.test_edits_and_deletions import deleted

    llm = scripted_llm()
    async with llm, lukas(tmp_path, database_url, llm) as h:
        first_ts = "1790000000.000100"
        await h.send(message_event(text=FACT, ts=first_ts))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
        await h.settle()
        await converse(h, [f"note {i}" for i in range(2, 15)])
        assert (row := await summary_row(h)) is not None and "Fernando" in row.text
        await h.send(deleted(channel="D0DM", ts=first_ts))
        await h.settle()
        async with h.lukas.services.sessions() as session:
            erased = await session.scalar(select(Message).where(Message.slack_ts == first_ts))
            assert erased is not None and erased.erased_at is not None and erased.content == ""
        assert await summary_row(h) is None
        await converse(h, ["what do you remember?"])
        assert all("Fernando" not in m["content"] for m in answers(h)[-1]["messages"])
