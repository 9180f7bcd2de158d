"""The thinking status while the model works, and suggested prompts when an AI-app thread starts."""

from __future__ import annotations

from pathlib import Path

from bot.config.loader import load_config
from tests.harness import mention_event, message_event, new_ts, running_lukas
from tests.providers.standins import StreamingLLM
from tests.standins.openai_api import LLMFault, OpenAIStandIn

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config.yml")


def order(h, *methods: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.method for c in h.slack.calls if c.method in methods]


async def test_thinking_status_is_shown_while_the_model_works_and_cleared_by_the_reply_itself(
    tmp_path: Path, database_url: str
) -> None:
    llm = OpenAIStandIn(latency=0.3)
    async with llm, running_lukas(tmp_path, database_url, llm=llm) as h:
        ts = new_ts()
        await h.send(message_event(text="hello bear", ts=ts))
        await h.settle()
        # One status call per answer: Slack clears the status itself when the reply arrives.
        (status,) = h.slack.calls_to("assistant.threads.setStatus")
        # A DM's main timeline has no thread: the status goes on the person's message, as Bolt's set_status does.
        assert (status.params["channel_id"], status.params["thread_ts"]) == ("D0DM", ts)
        assert status.params["status"] == CONFIG.assistant.status == "is thinking…"
        assert status.params["loading_messages"] == CONFIG.assistant.loading_messages
        assert order(h, "assistant.threads.setStatus", "chat.postMessage") == [
            "assistant.threads.setStatus",
            "chat.postMessage",
        ]
        assert status.at < llm.chat_requests[0].at + 0.3  # shown while the model was still thinking


async def test_the_reply_clears_the_status_after_a_fallback_and_in_threads_and_streams(
    tmp_path: Path, database_url: str
) -> None:
    llm = StreamingLLM(reply="A streamed answer for the thread, word by word. 🐻")
    llm.stream_chunk_delay = 0.02
    llm.latency = 0.2
    overrides = {"streaming": {"enabled": True, "flush_interval_seconds": 0.05}}
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=overrides) as h:
        root = new_ts()
        await h.send(mention_event(text="stream it", ts=root))
        await h.settle()
        calls = h.slack.calls_to("assistant.threads.setStatus")
        assert [(c.params["thread_ts"], c.params["status"]) for c in calls] == [(root, "is thinking…")]
        assert order(h, "assistant.threads.setStatus", "chat.startStream", "chat.stopStream") == [
            "assistant.threads.setStatus",
            "chat.startStream",
            "chat.stopStream",
        ]

        llm.faults.extend([LLMFault(500)] * 3)
        await h.send(message_event(text="and now?", channel="C0GENERAL", thread_ts=root))
        await h.settle()
        calls = h.slack.calls_to("assistant.threads.setStatus")
        assert [c.params["status"] for c in calls] == ["is thinking…", "is thinking…"]
        assert h.slack.posted_texts("C0GENERAL")[-1] in CONFIG.fallbacks.lines


async def test_a_status_still_being_set_when_the_reply_shows_is_cleared_and_so_is_one_without_a_reply(
    tmp_path: Path, database_url: str
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        h.slack.delay("assistant.threads.setStatus", 0.3)  # the model answers before Slack has set the status
        ts = new_ts()
        await h.send(message_event(text="quick one", ts=ts))
        await h.settle()
        await h.wait_until(lambda: len(h.slack.calls_to("assistant.threads.setStatus")) == 2)
        assert [c.params["status"] for c in h.slack.calls_to("assistant.threads.setStatus")] == ["is thinking…", ""]

        h.slack.delay("assistant.threads.setStatus", 0)
        h.slack.fail("chat.postMessage", "channel_not_found", times=20)  # nothing can be posted: Lukas clears it
        await h.send(message_event(text="anyone there?"))
        await h.settle()
        await h.wait_until(lambda: len(h.slack.calls_to("assistant.threads.setStatus")) == 4)
        assert [c.params["status"] for c in h.slack.calls_to("assistant.threads.setStatus")][-2:] == [
            "is thinking…",
            "",
        ]


async def test_a_failing_status_never_blocks_the_reply(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides={"assistant": {"loading_messages": []}}) as h:
        h.slack.fail("assistant.threads.setStatus", "missing_scope", times=10)
        await h.send(message_event(text="hello?"))
        await h.settle()
        assert h.slack.posted_texts("D0DM") == ["Hello from the honey pot! 🐻"]
        (status,) = h.slack.calls_to("assistant.threads.setStatus")  # no clearing of a status that never showed
        assert "loading_messages" not in status.params
        assert [m.sender for m in await h.messages()] == ["user", "bot"]


async def test_the_status_can_be_switched_off(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides={"assistant": {"thinking_status": False}}) as h:
        await h.send(message_event(text="hello?"))
        await h.settle()
        assert h.slack.calls_to("assistant.threads.setStatus") == []
        assert len(h.slack.posted_texts("D0DM")) == 1


async def test_suggested_prompts_in_the_agent_view_and_when_an_assistant_thread_starts(
    tmp_path: Path, database_url: str
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        home = {"type": "app_home_opened", "user": "U0ANNA", "channel": "D0DM", "tab": "messages", "event_ts": new_ts()}
        status, _ = await h.send(home)
        assert status == 200
        await h.wait_until(lambda: len(h.slack.calls_to("assistant.threads.setSuggestedPrompts")) == 1)
        (offer,) = h.slack.calls_to("assistant.threads.setSuggestedPrompts")
        expected = [{"title": p.title, "message": p.message} for p in CONFIG.assistant.suggested_prompts]
        assert offer.params["channel_id"] == "D0DM" and "thread_ts" not in offer.params
        assert offer.params["prompts"] == expected and offer.params["title"] == CONFIG.assistant.prompts_title

        status, _ = await h.send({**home, "tab": "home", "event_ts": new_ts()})  # the Home tab: nothing to offer
        assert status == 200

        thread_ts = new_ts()
        started = {
            "type": "assistant_thread_started",
            "assistant_thread": {"user_id": "U0ANNA", "channel_id": "D0DM", "thread_ts": thread_ts, "context": {}},
            "event_ts": new_ts(),
        }
        status, _ = await h.send(started)
        assert status == 200
        await h.wait_until(lambda: len(h.slack.calls_to("assistant.threads.setSuggestedPrompts")) == 2)
        second = h.slack.calls_to("assistant.threads.setSuggestedPrompts")[1]
        assert (second.params["channel_id"], second.params["thread_ts"]) == ("D0DM", thread_ts)
        assert second.params["prompts"] == expected
        assert h.llm.chat_requests == [] and await h.messages() == []  # nothing to answer, nothing stored
