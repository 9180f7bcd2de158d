"""Slack's side of exactly once: replies name their question in message metadata; an unknown post outcome is
looked up before posting again; Slack's Retry-After is capped."""

from __future__ import annotations

import time
from pathlib import Path

from tests.harness import mention_event, message_event, running_lukas
from tests.replicas.helpers import user_rows


async def test_a_reply_names_its_question_in_message_metadata(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        await h.send(message_event(text="hello"))
        await h.settle()
        (post,) = h.slack.calls_to("chat.postMessage")
        (question,) = await user_rows(h)
        metadata = post.params["metadata"]
        assert metadata["event_type"] == "lukas_reply"
        assert metadata["event_payload"] == {"question_id": str(question.id), "part": 0}


async def test_a_post_that_landed_but_answered_500_is_not_posted_again(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        h.slack.lose_responses["chat.postMessage"] = 1  # the message is in Slack; the answer says 500
        await h.send(message_event(text="did you get that?"))
        await h.settle()
        assert len(h.slack.calls_to("chat.postMessage")) == 1
        (lookup,) = h.slack.calls_to("conversations.history")
        assert lookup.params["include_all_metadata"] in (True, "true", "1", 1)
        (question,) = await user_rows(h)
        assert question.reply_state == "done"
        (reply,) = [m for m in await h.messages() if m.sender == "bot"]
        assert reply.slack_ts == h.slack.messages["D0DM"][0]["ts"]


async def test_a_post_that_failed_with_500_is_looked_up_then_posted_once(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        h.slack.fail("chat.postMessage", "internal_error", status=500)  # nothing landed
        await h.send(message_event(text="hello?"))
        await h.settle()
        assert len(h.slack.calls_to("chat.postMessage")) == 2  # no blind retry by the client: one lookup, one post
        assert len(h.slack.calls_to("conversations.history")) == 1
        assert len(h.slack.messages["D0DM"]) == 1
        assert [q.reply_state for q in await user_rows(h)] == ["done"]


async def test_a_thread_reply_is_looked_up_in_the_thread(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        h.slack.lose_responses["chat.postMessage"] = 1
        root = "1800000999.000100"

        await h.send(mention_event(text="hi bear", ts=root))
        await h.settle()
        (lookup,) = h.slack.calls_to("conversations.replies")
        assert (lookup.params["channel"], lookup.params["ts"]) == ("C0GENERAL", root)
        assert len(h.slack.calls_to("chat.postMessage")) == 1


async def test_a_retry_after_beyond_the_cap_is_not_waited_for(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides={"replicas": {"slack_max_retry_after_seconds": 2}}) as h:
        h.slack.fail("chat.postMessage", "ratelimited", retry_after=600)
        started = time.monotonic()
        await h.send(message_event(text="busy?"))
        await h.settle(timeout=20)
        assert time.monotonic() - started < 30  # not the 10 minutes Slack asked for
        assert len(h.slack.calls_to("chat.postMessage")) == 1
        assert [q.reply_state for q in await user_rows(h)] == ["failed"]


async def test_a_short_retry_after_is_waited_for_and_the_post_goes_through(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides={"replicas": {"slack_max_retry_after_seconds": 2}}) as h:
        h.slack.fail("chat.postMessage", "ratelimited", retry_after=1)
        await h.send(message_event(text="busy?"))
        await h.settle(timeout=20)
        assert len(h.slack.calls_to("chat.postMessage")) == 2
        assert len(h.slack.messages["D0DM"]) == 1
        assert [q.reply_state for q in await user_rows(h)] == ["done"]
