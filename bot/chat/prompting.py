"""The input side of an answer: token counts in the chat chain's tokenizer, then trim to the budget and run the
input checks. Apart from the service, which does the database and Slack, so the prompt rules read on their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.chat.memory_logic import fit_with_summary
from bot.config.live import LiveConfig
from bot.llm.chain_logic import counting_model
from bot.tokens import counting as tokens
from bot.tokens.trimming_logic import PromptMessage, prompt_tokens

log = logging.getLogger(__name__)
ContractsProvider = Callable[[], Any]


@dataclass(frozen=True)
class Prepared:
    """The prompt as it goes to the model, or why the input checks refused it."""

    messages: list[dict[str, str]]
    prompt_tokens: int
    refusal: str | None = None


class PromptPreparer:
    """Counts and trims in the current config's tokenizer (read at each call, so a reload applies at once)."""

    def __init__(self, *, config: LiveConfig, contracts: ContractsProvider | None) -> None:
        self._config = config
        self._contracts = contracts

    def model(self) -> str:
        """The tokenizer's model: the first of the chat chain."""
        return counting_model(self._config.current)

    def count(self, text: str) -> int:
        llm = self._config.current.llm
        return tokens.count_message(text, model=self.model(), default_encoding=llm.default_encoding)

    def count_cached(self, text: str) -> int:
        llm = self._config.current.llm
        return tokens.count_message_cached(text, model=self.model(), default_encoding=llm.default_encoding)

    def count_name(self, name: str) -> int:
        llm = self._config.current.llm
        return tokens.count_message_cached(f"{name}: ", model=self.model(), default_encoding=llm.default_encoding) - (
            tokens.TOKENS_PER_MESSAGE
        )

    def prepare(self, prompt: list[PromptMessage], *, summary: PromptMessage | None = None) -> Prepared:
        """Trim persona + summary + window to the token budget (the summary gives way first) and run the input
        checks."""
        config = self._config.current
        trimmed = fit_with_summary(
            system=prompt[0],
            summary=summary,
            window=prompt[1:],
            budget_tokens=config.llm.context_budget_tokens,
            reply_tokens=config.llm.max_tokens,
            shorten=self._shorten,
            count=self.count,
        )
        if trimmed.dropped or trimmed.shortened or trimmed.summary in ("shortened", "dropped"):
            log.info(
                "trimmed the prompt to %d tokens (dropped %d old messages%s%s)",
                trimmed.prompt_tokens,
                trimmed.dropped,
                ", shortened the newest" if trimmed.shortened else "",
                f", summary {trimmed.summary}" if trimmed.summary in ("shortened", "dropped") else "",
            )
        messages = trimmed.messages
        engine = self._contracts() if self._contracts else None
        if engine is not None:
            from bot.contracts import ChatCandidate

            outcome = engine.check_chat_input(
                ChatCandidate(
                    messages=messages,
                    budget_tokens=config.llm.context_budget_tokens,
                    reply_tokens=config.llm.max_tokens,
                    model=self.model(),
                    default_encoding=config.llm.default_encoding,
                )
            )
            if not outcome.ok:
                return Prepared([], 0, refusal="; ".join(outcome.reasons) or "input check failed")
            messages = outcome.value.messages
        return Prepared([m.as_dict() for m in messages], prompt_tokens(messages))

    def count_text(self, text: str) -> int:
        """Tokens of the text alone (no per-message overhead)."""
        llm = self._config.current.llm
        return tokens.count_text(text, model=self.model(), default_encoding=llm.default_encoding)

    def shorten(self, text: str, max_tokens: int) -> str:
        return self._shorten(text, max_tokens)

    def _shorten(self, text: str, max_tokens: int) -> str:
        llm = self._config.current.llm
        return tokens.truncate_text(
            text, max_tokens=max_tokens, model=self.model(), default_encoding=llm.default_encoding
        )
