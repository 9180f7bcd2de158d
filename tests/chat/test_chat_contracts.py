"""The contract layer on the chat path: refused input is flagged and answered in character; bad replies never post."""

from __future__ import annotations

from pathlib import Path

from bot.config.loader import load_config
from tests.harness import message_event, running_lukas
from tests.standins.openai_api import OpenAIStandIn

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config.yml")
BANNED = {"contracts": {"banned_terms": ["kraken"]}}


async def test_banned_input_gets_a_refusal_and_is_flagged_and_forgotten(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=BANNED) as h:
        await h.send(message_event(text="tell me about the K R A K E N please"))
        await h.settle()
        assert h.llm.chat_requests == []  # nothing reached the model
        (refusal,) = h.slack.posted_texts("D0DM")
        assert refusal in CONFIG.fallbacks.refusal_lines
        assert "kraken" not in refusal.lower()
        user_row, reply_row = await h.messages()
        assert user_row.flagged and user_row.flag_reason and "kraken" not in user_row.flag_reason.lower()
        assert reply_row.sender == "fallback"

        await h.send(message_event(text="ok, what about honey?"))
        await h.settle()
        sent = h.llm.chat_requests[0].body["messages"]
        assert [m["role"] for m in sent] == ["system", "user"]  # the refused message stays out of history
        assert "K R A K E N" not in str(sent)


async def test_a_reply_with_a_banned_term_is_replaced_by_a_fallback(tmp_path: Path, database_url: str) -> None:
    llm = OpenAIStandIn(reply="Let me tell you about the Kraken!")
    async with llm, running_lukas(tmp_path, database_url, overrides=BANNED, llm=llm) as h:
        await h.send(message_event(text="what lives in the sea?"))
        await h.settle()
        (post,) = h.slack.posted_texts("D0DM")
        assert post in CONFIG.fallbacks.lines
        assert [m.sender for m in await h.messages()] == ["user", "fallback"]
        (call,) = await h.llm_calls()
        assert call.outcome == "ok"  # the model answered (and was paid); the checks refused the words


async def test_a_secret_in_a_reply_is_redacted_before_posting(tmp_path: Path, database_url: str) -> None:
    llm = OpenAIStandIn(reply="Sure! The key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 🐻")
    async with llm, running_lukas(tmp_path, database_url, llm=llm) as h:
        await h.send(message_event(text="what's the key?"))
        await h.settle()
        (post,) = h.slack.posted_texts("D0DM")
        assert "sk-proj-AbCd" not in post and "Sure!" in post
        stored = next(m for m in await h.messages() if m.sender == "bot")
        assert "sk-proj-AbCd" not in stored.content
