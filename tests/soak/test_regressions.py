"""Focused regression tests for what the soak found."""

from __future__ import annotations

import json
from pathlib import Path

from bot.chat.tokens import encoding_for
from tests.harness import envelope, message_event, running_lukas, sign


async def test_bodies_slack_never_sends_get_400_not_500(tmp_path: Path, database_url: str) -> None:
    """A 500 makes Slack redeliver; junk must be refused once, and Lukas must keep answering."""
    junk = [b"{not json", b"[]", b"payload=%7Bbad", b'"just a string"']
    async with running_lukas(tmp_path, database_url) as h:
        for body in junk:
            status, _ = await h.post_raw(body, sign(body))
            assert status == 400, body
        good = json.dumps(envelope(message_event(text="still there?"))).encode()
        assert (await h.post_raw(good, sign(good)))[0] == 200
        await h.settle()
        assert len(h.slack.posted_texts("D0DM")) == 1


async def test_the_tokenizer_is_loaded_at_start_not_on_the_first_message(tmp_path: Path, database_url: str) -> None:
    """Loading an encoding takes ~0.5 s; on the first message it stalled every ack behind it."""
    encoding_for.cache_clear()
    async with running_lukas(tmp_path, database_url) as h:
        assert encoding_for.cache_info().currsize == 1
        assert h.llm.chat_requests == []  # loaded before any message arrived
