"""Edits and deletions in Slack change what is stored, so the model never sees the old text; nothing is answered."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.chat.events_logic import DeletedMessage, EditedMessage, Ignored, classify_event
from tests.harness import message_event, new_ts, running_lukas


def changed(*, channel: str, ts: str, text: str, user: str = "U0ANNA", **message: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel,
        "channel_type": "im",
        "ts": new_ts(),
        "message": {"type": "message", "user": user, "text": text, "ts": ts, "edited": {"user": user}, **message},
        "previous_message": {"type": "message", "user": user, "text": "old", "ts": ts},
    }


def deleted(*, channel: str, ts: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": channel,
        "channel_type": "im",
        "ts": new_ts(),
        "deleted_ts": ts,
        "previous_message": previous or {"type": "message", "user": "U0ANNA", "text": "gone", "ts": ts},
    }


def classify(event: dict[str, Any]) -> Any:
    return classify_event(
        event=event, event_type="message", bot_user_id="UBOT", bot_id="BBOT", event_id="Ev1", team_id="T1"
    )


def test_classification_of_changes() -> None:
    assert classify(changed(channel="D1", ts="1700000000.000100", text="<@UBOT> fixed")) == EditedMessage(
        "D1", "1700000000.000100", "fixed"
    )
    assert classify(deleted(channel="D1", ts="1700000000.000100")) == DeletedMessage("D1", "1700000000.000100", False)
    own = deleted(channel="D1", ts="1700000000.000200", previous={"bot_id": "BBOT", "text": "hi"})
    assert classify(own) == DeletedMessage("D1", "1700000000.000200", True)
    # Lukas's own streamed replies are edited constantly: never applied, never answered
    assert isinstance(classify(changed(channel="D1", ts="1700000000.000300", text="x", bot_id="BBOT")), Ignored)
    assert isinstance(classify(changed(channel="D1", ts="not-a-ts", text="x")), Ignored)
    assert isinstance(classify({**deleted(channel="D1", ts="1700000000.1"), "deleted_ts": None}), Ignored)
    assert isinstance(classify({**changed(channel="D1", ts="1700000000.1", text="x"), "message": "?"}), Ignored)


async def test_edit_and_deletion_reach_the_next_llm_request(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        h.slack.add_user("U0ANNA", display_name="Anna")
        first_ts, secret_ts = new_ts(), new_ts()
        await h.send(message_event(text="My favourit colour is gren", ts=first_ts))
        await h.settle()
        await h.send(message_event(text="my password is hunter2-SECRET", ts=secret_ts))
        await h.settle()
        assert len(h.llm.chat_requests) == 2 and len(h.slack.calls_to("chat.postMessage")) == 2

        caplog.set_level(logging.DEBUG, logger="bot")
        status, _ = await h.send(changed(channel="D0DM", ts=first_ts, text="My favourite colour is green"))
        assert status == 200
        status, _ = await h.send(deleted(channel="D0DM", ts=secret_ts))
        assert status == 200
        await h.settle()
        # neither the edit nor the deletion is answered
        assert len(h.llm.chat_requests) == 2 and len(h.slack.calls_to("chat.postMessage")) == 2

        rows = {row.slack_ts: row for row in await h.messages()}
        edited, erased = rows[first_ts], rows[secret_ts]
        assert edited.content == "My favourite colour is green" and edited.edited_at is not None
        assert edited.token_count and edited.erased_at is None
        assert (erased.content, erased.token_count) == ("", 0) and erased.erased_at is not None
        assert erased.reply_state == "done"  # the row stays (the ledger still points at it)

        await h.send(message_event(text="What is my favourite colour?"))
        await h.settle()
        sent = [m["content"] for m in h.llm.chat_requests[-1].body["messages"]]
        assert "Anna: My favourite colour is green" in sent
        assert not any("gren" in m or "hunter2" in m for m in sent)
        assert sent[-1] == "Anna: What is my favourite colour?"
        assert "hunter2" not in caplog.text
        updated = [r for r in caplog.records if "was edited in Slack: updated" in r.getMessage()]
        erased_logs = [r for r in caplog.records if "was deleted in Slack: erased" in r.getMessage()]
        assert len(updated) == 1 and len(erased_logs) == 1 and updated[0].levelno == logging.INFO


async def test_edit_of_unknown_message_and_deletion_of_lukas_own_reply(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        question_ts = new_ts()
        await h.send(message_event(text="Tell me a honey fact", ts=question_ts))
        await h.settle()
        reply_ts = (await h.messages())[1].slack_ts
        assert reply_ts

        caplog.set_level(logging.DEBUG, logger="bot")
        never_stored = changed(channel="C0ELSEWHERE", ts=new_ts(), text="an edit Lukas never saw")
        assert (await h.send(never_stored))[0] == 200
        own = deleted(channel="D0DM", ts=reply_ts, previous={"bot_id": "BBOT", "text": "Hello", "ts": reply_ts})
        assert (await h.send(own))[0] == 200
        await h.settle()

        assert len(h.slack.calls_to("chat.postMessage")) == 1 and len(h.llm.chat_requests) == 1
        unknown = [r for r in caplog.records if "was edited in Slack: not stored" in r.getMessage()]
        assert len(unknown) == 1 and unknown[0].levelno == logging.DEBUG
        own_logs = [r for r in caplog.records if "one of Lukas's own messages" in r.getMessage()]
        assert len(own_logs) == 1 and own_logs[0].levelno == logging.INFO
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        reply = (await h.messages())[1]
        assert reply.sender == "bot" and reply.content == "" and reply.erased_at is not None
