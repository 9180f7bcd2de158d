"""Fit a conversation into the model's token budget. Pure: counts come in, a trimmed prompt goes out.

Counts are per message with the cookbook's overhead already included (bot.tokens.counting.count_message),
stored once per message in the database, so trimming never re-tokenises history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.tokens.counting import REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE, TOKENS_PER_NAME


@dataclass(frozen=True)
class PromptMessage:
    role: str  # system | user | assistant
    content: str
    tokens: int  # includes the per-message overhead
    name: str | None = None

    def as_dict(self) -> dict[str, str]:
        message = {"role": self.role, "content": self.content}
        if self.name:
            message["name"] = self.name
        return message


@dataclass(frozen=True)
class TrimResult:
    messages: list[PromptMessage]
    dropped: int
    shortened: bool
    prompt_tokens: int

    def fits(self, *, budget_tokens: int, reply_tokens: int) -> bool:
        return self.prompt_tokens + reply_tokens <= budget_tokens


def prompt_tokens(messages: list[PromptMessage]) -> int:
    return sum(message.tokens for message in messages) + REPLY_PRIMING_TOKENS


def fit_to_budget(
    *,
    messages: list[PromptMessage],
    budget_tokens: int,
    reply_tokens: int,
    shorten: Callable[[str, int], str],
    count: Callable[[str], int],
) -> TrimResult:
    """Drop the oldest history until prompt + reply fit; never the system prompt or the newest message.

    `messages` is [system, *history, newest]. If system + newest alone are still too big, the newest
    message is shortened (`shorten(text, max_tokens)`, re-counted with `count(text)`) rather than refused.
    """
    if len(messages) < 2:
        return TrimResult(list(messages), 0, False, prompt_tokens(messages))
    system, history, newest = messages[0], list(messages[1:-1]), messages[-1]
    allowed = budget_tokens - reply_tokens - REPLY_PRIMING_TOKENS
    used = system.tokens + newest.tokens + sum(m.tokens for m in history)
    dropped = 0
    while history and used > allowed:
        used -= history.pop(0).tokens
        dropped += 1
    shortened = False
    if used > allowed:
        overhead = TOKENS_PER_MESSAGE + (TOKENS_PER_NAME if newest.name else 0)
        room = max(allowed - system.tokens - overhead, 1)
        text = shorten(newest.content, room)
        newest = replace(newest, content=text, tokens=overhead + count(text))
        shortened = True
    kept = [system, *history, newest]
    return TrimResult(kept, dropped, shortened, prompt_tokens(kept))
