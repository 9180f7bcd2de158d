"""The built-in contracts. Each is small and pure: it reads a value and says pass, fixed or violation.

Reasons are fixed phrases with numbers, never the offending text, so they can be logged and shown to
admins without repeating a banned term or a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from bot.config.contracts_schema import (
    CHAT_INPUT,
    BannedTermsSettings,
    ContractSpec,
    PromptLengthSettings,
    ReplyLengthSettings,
    ReplyPolicySettings,
)
from bot.contracts.base import (
    ChatCandidate,
    Contract,
    Finding,
    counted,
    is_blank,
    message_text,
    with_text,
)
from bot.contracts.normalise import BannedTermMatcher
from bot.contracts.secrets import find_secrets, redact
from bot.tokens.counting import count_text, truncate_text
from bot.tokens.trimming_logic import fit_to_budget, prompt_tokens

_SENTENCE_END = re.compile(r"(?:[.!?…。！？]+[\"'”’)\]]*(?=\s|$))|\n")


def trim_at_sentence(text: str, *, max_chars: int, ellipsis: str = "…") -> str:
    """At most max_chars: cut after the last full sentence, or at a word boundary with an ellipsis."""
    if len(text) <= max_chars:
        return text
    window = text[:max_chars]
    ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if ends and ends[-1] >= max_chars // 2:
        return window[: ends[-1]].rstrip()
    return trim_at_word(text, max_chars=max_chars, suffix=ellipsis)


def trim_at_word(text: str, *, max_chars: int, suffix: str = "") -> str:
    """At most max_chars including suffix, cut at the last whitespace when that keeps most of the text."""
    if len(text) <= max_chars:
        return text
    room = max(max_chars - len(suffix), 0)
    window = text[:room]
    cut = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
    if cut >= room // 2:
        window = window[:cut]
    return window.rstrip(" \t\n,;:-–—") + suffix


def _newest(candidate: ChatCandidate) -> int | None:
    return len(candidate.messages) - 1 if candidate.messages else None


class NotEmpty(Contract):
    name = "not_empty"

    def __init__(self, *, stage: str) -> None:
        self.stage = stage
        self.what = {"chat_input": "message", "chat_output": "reply", "image_prompt": "prompt"}.get(stage, "text")

    def check(self, value: Any, *, auto_fix: bool) -> Finding:
        if self.stage == CHAT_INPUT:
            index = _newest(value)
            if index is None:
                return Finding.violation("there are no messages to answer")
            if is_blank(message_text(value.messages[index])):
                return Finding.violation("the message has no text")
            return Finding.passed()
        return Finding.violation(f"the {self.what} is empty") if is_blank(value) else Finding.passed()


class PromptLength(Contract):
    """Characters, not tokens: the image API's 4000-character limit (seed 002), or a cap on one chat message."""

    name = "prompt_length"

    def __init__(self, *, stage: str, settings: PromptLengthSettings) -> None:
        self.stage = stage
        self.max_chars = settings.max_chars

    def check(self, value: Any, *, auto_fix: bool) -> Finding:
        if self.stage == CHAT_INPUT:
            index = _newest(value)
            if index is None:
                return Finding.passed()
            text = message_text(value.messages[index])
        else:
            text = value
        if len(text) <= self.max_chars:
            return Finding.passed()
        too_long = f"{len(text)} characters, the limit is {self.max_chars}"
        if not auto_fix:
            return Finding.violation(f"too long: {too_long}")
        short = trim_at_word(text, max_chars=self.max_chars)
        reason = f"shortened to {len(short)} characters ({too_long})"
        if self.stage != CHAT_INPUT or index is None:
            return Finding.fixed(short, reason)
        messages = list(value.messages)
        messages[index] = with_text(messages[index], short, candidate=value)
        return Finding.fixed(replace(value, messages=messages), reason)


class TokenBudget(Contract):
    """Prompt + reply must fit the model's budget. Counts and trimming come from bot.chat (one source of truth)."""

    name = "token_budget"

    def check(self, value: ChatCandidate, *, auto_fix: bool) -> Finding:
        messages = [counted(message, candidate=value) for message in value.messages]
        needed = prompt_tokens(messages) + value.reply_tokens
        if needed <= value.budget_tokens:
            return Finding.passed()
        over = f"prompt and reply need {needed} tokens, the budget is {value.budget_tokens}"
        if not auto_fix:
            return Finding.violation(over)
        options = {"model": value.model, "default_encoding": value.default_encoding}
        result = fit_to_budget(
            messages=messages,
            budget_tokens=value.budget_tokens,
            reply_tokens=value.reply_tokens,
            shorten=lambda text, room: truncate_text(text, max_tokens=room, **options),
            count=partial(count_text, **options),
        )
        if not result.fits(budget_tokens=value.budget_tokens, reply_tokens=value.reply_tokens):
            return Finding.violation(f"{over}, even without history")
        done = [f"dropped {result.dropped} oldest message(s)"] if result.dropped else []
        done += ["shortened the newest message"] if result.shortened else []
        return Finding.fixed(replace(value, messages=result.messages), f"{' and '.join(done)} ({over})")


class BannedTerms(Contract):
    """Banned words and phrases; the fix masks them. The reason never says which term it was."""

    name = "banned_terms"
    partial = True

    def __init__(self, *, stage: str, settings: BannedTermsSettings, matcher: BannedTermMatcher) -> None:
        self.stage = stage
        self.matcher = matcher
        self.scope = settings.scope
        self.mask = settings.mask

    def _targets(self, candidate: ChatCandidate) -> list[int]:
        if not candidate.messages:
            return []
        if self.scope == "newest":
            return [len(candidate.messages) - 1]
        return [i for i, message in enumerate(candidate.messages) if message.role != "system"]

    def check(self, value: Any, *, auto_fix: bool) -> Finding:
        if not self.matcher:
            return Finding.passed()
        if self.stage != CHAT_INPUT:
            if not self.matcher.contains(value):
                return Finding.passed()
            if not auto_fix:
                return Finding.violation("banned term found")
            masked, count = self.matcher.mask(value, mask=self.mask)
            return Finding.fixed(masked, f"masked {count} banned term(s)")
        hits = [i for i in self._targets(value) if self.matcher.contains(message_text(value.messages[i]))]
        if not hits:
            return Finding.passed()
        if not auto_fix:
            return Finding.violation("banned term found")
        messages, total = list(value.messages), 0
        for index in hits:
            masked, count = self.matcher.mask(message_text(messages[index]), mask=self.mask)
            messages[index] = with_text(messages[index], masked, candidate=value)
            total += count
        return Finding.fixed(replace(value, messages=messages), f"masked {total} banned term(s)")


class ReplyLength(Contract):
    name = "reply_length"

    def __init__(self, *, settings: ReplyLengthSettings) -> None:
        self.settings = settings

    def check(self, value: str, *, auto_fix: bool) -> Finding:
        limits = self.settings
        length = len(value.strip())
        if length < limits.min_chars:
            return Finding.violation(f"too short: {length} characters, the minimum is {limits.min_chars}")
        if len(value) <= limits.max_chars:
            return Finding.passed()
        too_long = f"{len(value)} characters, the limit is {limits.max_chars}"
        if not auto_fix:
            return Finding.violation(f"too long: {too_long}")
        short = trim_at_sentence(value, max_chars=limits.max_chars, ellipsis=limits.ellipsis)
        if len(short.strip()) < limits.min_chars:
            return Finding.violation(f"too long: {too_long}, and no shorter version is long enough")
        return Finding.fixed(short, f"trimmed to {len(short)} characters ({too_long})")


class ReplyPolicy(Contract):
    """What Lukas must never say: banned terms (violation) and credentials (redacted when auto_fix is on)."""

    name = "reply_policy"
    partial = True

    def __init__(self, *, settings: ReplyPolicySettings, matcher: BannedTermMatcher) -> None:
        self.settings = settings
        self.matcher = matcher

    def check(self, value: str, *, auto_fix: bool) -> Finding:
        if self.settings.banned_terms and self.matcher.contains(value):
            return Finding.violation("the reply contains a banned term")
        if not self.settings.secrets:
            return Finding.passed()
        secrets = find_secrets(value)
        if not secrets:
            return Finding.passed()
        kinds = ", ".join(sorted({kind for _s, _e, kind in secrets}))
        if not auto_fix:
            return Finding.violation(f"the reply contains something that looks like a secret ({kinds})")
        return Finding.fixed(
            redact(value, secrets, replacement=self.settings.redaction),
            f"redacted {len(secrets)} secret-looking string(s) ({kinds})",
        )


Factory = Callable[..., Contract]
BUILTIN_FACTORIES: dict[str, Factory] = {
    "not_empty": lambda *, stage, settings, matcher: NotEmpty(stage=stage),
    "prompt_length": lambda *, stage, settings, matcher: PromptLength(stage=stage, settings=settings),
    "token_budget": lambda *, stage, settings, matcher: TokenBudget(),
    "banned_terms": lambda *, stage, settings, matcher: BannedTerms(stage=stage, settings=settings, matcher=matcher),
    "reply_length": lambda *, stage, settings, matcher: ReplyLength(settings=settings),
    "reply_policy": lambda *, stage, settings, matcher: ReplyPolicy(settings=settings, matcher=matcher),
}


def build_contract(spec: ContractSpec, *, stage: str, matcher: BannedTermMatcher) -> Contract:
    """A contract object for one config entry (the schema has already checked name, stage and settings)."""
    return BUILTIN_FACTORIES[spec.name](stage=stage, settings=spec.parsed_settings(), matcher=matcher)
