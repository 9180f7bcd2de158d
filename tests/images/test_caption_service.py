"""The weekly picture's caption comes from Lukas himself, through the chat gateway, and is paid for in the ledger."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.store.models import GeneratedImage, LLMCall
from tests.harness import running_lukas
from tests.standins.openai_api import OpenAIStandIn

CAPTION = "Happy Monday, friends! Here I am among the autumn leaves 🐻"
CHANNELS = {"images": {"channels": ["C0PICS"]}}


async def test_the_caption_is_written_by_the_chat_model(tmp_path: Path, database_url: str) -> None:
    llm = OpenAIStandIn(reply=CAPTION)
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=CHANNELS) as h:
        row = await h.lukas.images.run_now()
        assert row.status == "succeeded", row.error
        (asked,) = llm.chat_requests
        assert asked.body["messages"][0]["content"].startswith("You are Lukas the Bear")
        assert "Write the caption" in asked.body["messages"][-1]["content"]
        (complete,) = h.slack.calls_to("files.completeUploadExternal")
        assert complete.params["initial_comment"] == CAPTION
        async with h.lukas.services.sessions() as session:
            calls = list(await session.scalars(select(LLMCall)))
            images = list(await session.scalars(select(GeneratedImage)))
        assert [(c.purpose, c.outcome, c.conversation_id) for c in calls] == [("caption", "ok", None)]
        assert len(images) == 1 and len(llm.image_requests) == 1


async def test_a_caption_the_model_cannot_write_falls_back_to_the_template(tmp_path: Path, database_url: str) -> None:
    from tests.standins.openai_api import LLMFault

    async with running_lukas(tmp_path, database_url, overrides=CHANNELS) as h:
        h.llm.faults.extend([LLMFault(500)] * 3)
        row = await h.lukas.images.run_now()
        assert row.status == "succeeded", row.error
        (complete,) = h.slack.calls_to("files.completeUploadExternal")
        caption = complete.params["initial_comment"]
        assert caption and "Lukas" in caption  # the job's own in-character template
        async with h.lukas.services.sessions() as session:
            (call,) = list(await session.scalars(select(LLMCall)))
        assert (call.purpose, call.outcome, call.attempts) == ("caption", "server_error", 3)
