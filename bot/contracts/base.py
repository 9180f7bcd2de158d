"""The contract vocabulary: candidates, verdicts, one contract's finding and the engine's outcome."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar

from bot.tokens.counting import count_message
from bot.tokens.trimming_logic import PromptMessage


class Verdict(StrEnum):
    PASS = "pass"
    FIXED = "fixed"
    VIOLATION = "violation"


@dataclass(frozen=True)
class ChatCandidate:
    """What chat input contracts look at: the prompt about to be sent, and the budget it must fit."""

    messages: list[PromptMessage]  # [system, *history, newest user message]
    budget_tokens: int
    reply_tokens: int
    model: str
    default_encoding: str = "cl100k_base"


@dataclass(frozen=True)
class ContractOutcome:
    """The engine's answer for one candidate. `reasons` are for admins and logs, never contain a banned term."""

    verdict: Verdict
    value: Any  # the (possibly fixed) candidate: ChatCandidate or str
    reasons: list[str] = field(default_factory=list)
    contract: str | None = None  # the contract that produced the violation

    @property
    def ok(self) -> bool:
        return self.verdict is not Verdict.VIOLATION


@dataclass(frozen=True)
class Finding:
    """What one contract says about a value. `reason` never repeats offending content."""

    verdict: Verdict
    reason: str = ""
    value: Any = None  # the fixed value, for FIXED

    @classmethod
    def passed(cls) -> Finding:
        return _PASSED

    @classmethod
    def fixed(cls, value: Any, reason: str) -> Finding:
        return cls(Verdict.FIXED, reason, value)

    @classmethod
    def violation(cls, reason: str) -> Finding:
        return cls(Verdict.VIOLATION, reason)


_PASSED = Finding(Verdict.PASS)


class Contract:
    """One check. `check` must not mutate its input; raising is allowed (the engine counts it as an error)."""

    name: ClassVar[str] = "contract"
    partial: ClassVar[bool] = False  # also runs on streaming prefixes (policy checks only, never fixes)

    def check(self, value: Any, *, auto_fix: bool) -> Finding:
        raise NotImplementedError


def content_text(content: Any) -> str:
    """The text of a message content: str, None, or OpenAI-style parts [{"type": "text", "text": ...}, ...]."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list | tuple):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    return ""


def is_blank(text: str) -> bool:
    """True if nothing visible remains once whitespace and invisible characters (zero-width, controls) go."""
    for char in text:
        if char.isspace():
            continue
        category = unicodedata.category(char)
        if category in ("Cf", "Cc", "Zs", "Zl", "Zp") or category[0] == "M":
            continue
        return False
    return True


def coerce_candidate(candidate: Any) -> ChatCandidate | None:
    """The candidate with every message a PromptMessage (dicts are accepted), or None if unusable."""
    if not isinstance(candidate, ChatCandidate):
        return None
    messages = candidate.messages
    if messages is None:
        return replace(candidate, messages=[])
    if not isinstance(messages, list | tuple):
        return None
    if isinstance(messages, list) and all(isinstance(message, PromptMessage) for message in messages):
        return candidate
    coerced = []
    for message in messages:
        if isinstance(message, PromptMessage):
            coerced.append(message)
        elif isinstance(message, Mapping):
            tokens = message.get("tokens")
            coerced.append(
                PromptMessage(
                    role=str(message.get("role", "user")),
                    content=message.get("content"),
                    tokens=tokens if isinstance(tokens, int) else 0,
                    name=message.get("name"),
                )
            )
        else:
            return None
    return replace(candidate, messages=coerced)


def message_text(message: PromptMessage) -> str:
    return content_text(message.content)


def with_text(message: PromptMessage, text: str, *, candidate: ChatCandidate) -> PromptMessage:
    """The message with new text and its token count redone by the one counter (bot.tokens.counting)."""
    tokens = count_message(text, model=candidate.model, default_encoding=candidate.default_encoding, name=message.name)
    return replace(message, content=text, tokens=tokens)


def counted(message: PromptMessage, *, candidate: ChatCandidate) -> PromptMessage:
    """The message with a usable token count: stored counts are trusted; missing ones are counted."""
    if isinstance(message.tokens, int) and message.tokens > 0 and isinstance(message.content, str):
        return message
    return with_text(message, message_text(message), candidate=candidate)
