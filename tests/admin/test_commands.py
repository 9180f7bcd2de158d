"""`/lukas` as Slack sends it (signed form posts): admins get answers, everyone else a polite no."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import bot
from bot.admin.commands_logic import DENIED
from bot.store.models import GeneratedImage, LLMCall
from tests.admin.conftest import ADMIN, BASE
from tests.harness import message_event, running_lukas


async def test_non_admin_is_denied_politely_and_the_attempt_is_logged(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.slack.commands")
    async with running_lukas(tmp_path, database_url, overrides=BASE) as h:
        for text in ("status", "usage 7", "reload", "image now"):
            status, ack = await h.command(text, user="U0ANNA")
            assert status == 200
            assert ack == {"text": DENIED, "response_type": "ephemeral"}
        denied = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("U0ANNA" in m and "/lukas status denied" in m for m in denied)
        assert any("U0ANNA" in m and "/lukas image now denied" in m for m in denied)
        assert h.slack.responses() == []  # nothing was run for them
        assert await h.rows(GeneratedImage) == []

        status, ack = await h.command("help", user="U0ANNA")  # help is for everyone
        assert status == 200 and "/lukas usage [days]" in ack["text"] and ack["response_type"] == "ephemeral"


async def test_unknown_subcommands_and_wrong_arguments_get_helpful_answers(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=BASE) as h:
        _, ack = await h.command("stauts", user=ADMIN)
        assert "Did you mean `/lukas status`?" in ack["text"] and ack["response_type"] == "ephemeral"
        _, ack = await h.command("usage many", user=ADMIN)
        assert "`many` is not a number of days" in ack["text"]
        _, ack = await h.command("image", user="U0ANNA")
        assert "did you mean `/lukas image now`?" in ack["text"]
        _, ack = await h.command("", user=ADMIN)
        assert "/lukas reload" in ack["text"] and "for the admins" not in ack["text"]


async def test_admin_status_usage_and_image_now(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=BASE) as h:
        await h.send(message_event(text="hi Lukas"))
        await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 1)
        await h.settle()

        status, ack = await h.command("status", user=ADMIN, key="status")
        assert status == 200 and ack is None  # acknowledged at once; the answer follows
        await h.wait_until(lambda: len(h.slack.responses("status")) == 1)
        answer = h.slack.responses("status")[0]
        assert answer["response_type"] == "ephemeral"
        text = answer["text"]
        assert f"Lukas {bot.__version__}, up " in text
        assert "Model: openai gpt-4.1-mini, breaker closed" in text
        assert "Database: ok" in text
        assert "Last picture: no picture made yet" in text
        assert "Next picture: none (images.enabled is false)" in text
        assert "contracts: " in text and "chat_input" in text  # the live metrics of this process

        _, ack = await h.command("usage 7", user=ADMIN, key="usage")
        assert ack is None
        await h.wait_until(lambda: len(h.slack.responses("usage")) == 1)
        (call,) = await h.rows(LLMCall)
        usage = h.slack.responses("usage")[0]["text"]
        assert "Usage for the last 7 day(s)" in usage
        assert "Messages: 1 from people, 1 replies, 0 fallback lines" in usage
        assert f"openai gpt-4.1-mini: 1 calls, 0 errors, 0 fallbacks, {call.prompt_tokens} in + " in usage
        assert "pictures: $0.0000 of $5.0000 (0%)" in usage

        _, ack = await h.command("image now", user=ADMIN, key="image")
        assert "Painting a fresh picture" in ack["text"] and ack["response_type"] == "ephemeral"
        await h.wait_until(lambda: len(h.slack.responses("image")) == 1)
        (row,) = await h.rows(GeneratedImage)
        assert row.status == "skipped" and "no channels configured" in (row.error or "")
        assert h.slack.responses("image")[0]["text"].startswith("No picture this time: skipped — no channels")
        assert h.llm.image_requests == []  # nothing was bought

        await h.command("status", user=ADMIN, key="status2")
        await h.wait_until(lambda: len(h.slack.responses("status2")) == 1)
        assert ", skipped, theme " in h.slack.responses("status2")[0]["text"]


async def test_reload_command_answers_with_the_errors(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "config.yml"
    async with running_lukas(tmp_path, database_url, overrides={**BASE, "reload": {"watch": False}}) as h:
        path.write_text(path.read_text().replace("temperature: 0.7", "temperature: 9"))
        status, ack = await h.command("reload", user=ADMIN, key="bad")
        assert status == 200 and ack is None
        await h.wait_until(lambda: len(h.slack.responses("bad")) == 1)
        text = h.slack.responses("bad")[0]["text"]
        assert f"config error in {path}:" in text and "llm.temperature" in text
        assert h.lukas.config.current.llm.temperature == 0.7

        path.write_text(path.read_text().replace("temperature: 9", "temperature: 0.2"))
        await h.command("reload", user=ADMIN, key="good")
        await h.wait_until(lambda: len(h.slack.responses("good")) == 1)
        assert "reloaded; changed: llm" in h.slack.responses("good")[0]["text"]
        assert h.lukas.config.current.llm.temperature == 0.2
