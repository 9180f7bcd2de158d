"""Turn stored messages into the prompt: persona first, then the conversation oldest first. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.tokens.trimming_logic import PromptMessage

NAMES_NOTE = (
    "\n\nIn this conversation each person's message starts with their name and a colon, so you know who "
    "is talking. Use their names naturally. Do not start your own replies with a name and a colon."
)


@dataclass(frozen=True)
class StoredMessage:
    """What the prompt needs of a Message row."""

    id: int
    sender: str  # user | bot | fallback
    content: str
    user_name: str | None
    token_count: int | None
    flagged: bool = False
    context: bool = False  # a thread's earlier message (read on the first mention): precedes the own messages


def order_key(message: StoredMessage) -> tuple[int, int]:
    """Prompt order: a thread's context messages first (they were written before Lukas joined, whatever their
    ids), then the conversation's own messages by id."""
    return (0 if message.context else 1, message.id)


def usable_in_history(message: StoredMessage) -> bool:
    """Fallback lines and flagged (refused) messages never reach the model again."""
    return message.sender in ("user", "bot") and not message.flagged


def render_content(message: StoredMessage) -> str:
    if message.sender == "user" and message.user_name:
        return f"{message.user_name}: {message.content}"
    return message.content


def select_window(*, messages: list[StoredMessage], history_size: int) -> list[StoredMessage]:
    """The last `history_size` usable messages, oldest first (input may be in any order)."""
    usable = sorted((m for m in messages if usable_in_history(m)), key=order_key)
    return usable[-history_size:]


def build_prompt(
    *,
    system_prompt: str,
    window: list[StoredMessage],
    count: Callable[[str], int],
    count_name: Callable[[str], int],
    count_system: Callable[[str], int] | None = None,
) -> tuple[list[PromptMessage], dict[int, int]]:
    """Return the prompt and the token counts computed now (message id -> count) to store.

    Stored counts (of the message as written, per-message overhead included) are reused, so each message is
    tokenised once in its life; `count_name` adds the few tokens of the "Name: " prefix, and `count_system`
    (default `count`) lets the caller cache the persona prompt's count, which is the same on every request.
    """
    system_text = system_prompt.rstrip() + NAMES_NOTE
    prompt = [PromptMessage(role="system", content=system_text, tokens=(count_system or count)(system_text))]
    new_counts: dict[int, int] = {}
    for message in window:
        tokens = message.token_count
        if tokens is None:
            tokens = count(message.content)
            new_counts[message.id] = tokens
        content = render_content(message)
        if content != message.content and message.user_name:
            tokens += count_name(message.user_name)
        role = "user" if message.sender == "user" else "assistant"
        prompt.append(PromptMessage(role=role, content=content, tokens=tokens))
    return prompt, new_counts
