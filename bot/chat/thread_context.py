"""Called into a thread he is not part of yet: Lukas reads its earlier messages once, through the chat port, and
stores what the prompt can use as context messages of the conversation (issue 15)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from bot.chat.ports import ChatPlatform
from bot.chat.prompting import PromptPreparer
from bot.chat.thread_logic import ThreadMessage, keep_for_budget
from bot.config.schema import LukasConfig
from bot.store import chat_repo, memory_repo

log = logging.getLogger(__name__)
T = TypeVar("T")


async def read_thread_context(
    claimed: chat_repo.ClaimedMessage,
    *,
    platform: ChatPlatform,
    prompting: PromptPreparer,
    config: LukasConfig,
    db: Callable[[Callable[[Connection], Any]], Awaitable[Any]],
) -> bool:
    """True when context was stored (the caller reloads the history). The thread is marked read either way, so it
    is never read again; an unreadable thread (the platform says None) is answered from the mention alone."""
    conversation = claimed.conversation
    messages: list[ThreadMessage] | None = None
    if config.memory.read_threads and claimed.ts:
        messages = await platform.read_thread(
            channel=conversation.channel_id,
            thread_ts=conversation.thread_ts,
            before_ts=claimed.ts,
            keep=config.llm.history_size,
        )
    llm = config.llm
    mention = next((m.token_count or 0 for m in claimed.history if m.id == claimed.id), 0)
    room = llm.context_budget_tokens - llm.max_tokens - prompting.count_cached(config.persona.system_prompt) - mention
    kept = keep_for_budget(
        messages=messages or [], history_size=llm.history_size, max_tokens=max(room, 0), count=prompting.count
    )
    stored: int = await db(
        lambda s: memory_repo.store_thread_context(
            s, conversation_id=conversation.id, channel_id=conversation.channel_id, messages=kept
        )
    )
    if messages:
        log.info("read %d earlier message(s) of the thread, kept %d as context", len(messages), stored)
    return stored > 0
