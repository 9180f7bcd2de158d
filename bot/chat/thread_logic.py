"""A thread's earlier messages, read when Lukas is first mentioned in it (issue 15). Pure.

The Slack side (bot.slack.threads) turns conversations.replies into `ThreadMessage`s; the chat core decides which
of them the prompt can use and how they are stored: people as their own turns with their names, other bots as
"Name (bot)", Lukas's own earlier posts as his turns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

PERSON, OTHER_BOT, LUKAS = "person", "bot", "lukas"


@dataclass(frozen=True)
class ThreadMessage:
    ts: str
    author: str  # person | bot | lukas
    text: str
    user_id: str | None = None
    name: str | None = None  # a person's display name, or the bot's name

    @property
    def sender(self) -> str:
        """How it is stored: Lukas's own posts are his turns, everything else a named user turn."""
        return "bot" if self.author == LUKAS else "user"

    @property
    def display_name(self) -> str | None:
        if self.author == OTHER_BOT:
            return f"{self.name or 'A bot'} (bot)"
        return self.name if self.author == PERSON else None


def keep_for_budget(
    *, messages: Sequence[ThreadMessage], history_size: int, max_tokens: int, count: Callable[[str], int]
) -> list[tuple[ThreadMessage, int]]:
    """What the prompt can use, oldest first, with each message's token count: the thread's root (what the thread
    is about) and the newest messages before the mention, at most `history_size - 1` of them (the mention itself
    takes the last place) and within `max_tokens`."""
    room = max(history_size - 1, 0)
    if not messages or room == 0:
        return []
    root, rest = messages[0], list(messages[1:])
    chosen: list[tuple[ThreadMessage, int]] = []
    used = 0
    for message in reversed(rest):
        if len(chosen) >= room - 1:
            break
        tokens = count(message.text)
        if used + tokens > max_tokens:
            break
        chosen.append((message, tokens))
        used += tokens
    chosen.reverse()
    root_tokens = count(root.text)
    if used + root_tokens <= max_tokens:
        chosen.insert(0, (root, root_tokens))
    return chosen
