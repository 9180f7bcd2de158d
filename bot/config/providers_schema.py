"""The `providers:`, `chat_chain:`, `streaming:` and `assistant:` sections of config.yml (issue 8, seeds 003/004).

Named chat providers form an ordered chain: the first answers; when it cannot (breaker open, retries used up,
rate-limit wait too long, context too long), the next one does; after the last come the fallback lines.
With no `providers:` the `llm:` block is the one provider (a chain of one), so older config files stay valid.

API keys come from the environment (`api_key: ${OPENAI_API_KEY}`) and are held as SecretStr: they never show in
`repr`, logs, `lukas config check` or the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MAX_LOADING_MESSAGES = 10  # Slack rotates through at most 10
MAX_SUGGESTED_PROMPTS = 4  # Slack shows up to 4


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelPrice(Strict):
    """US dollars per one million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class RetryOverride(Strict):
    """Per-provider changes to `retry.chat`; what is left out keeps the `retry.chat` value."""

    attempts: int | None = Field(default=None, ge=1, le=10)
    wait_min_seconds: float | None = Field(default=None, ge=0)
    wait_max_seconds: float | None = Field(default=None, ge=0)
    multiplier: float | None = Field(default=None, gt=0)
    jitter_seconds: float | None = Field(default=None, ge=0)
    respect_retry_after: bool | None = None
    max_retry_after_seconds: float | None = Field(default=None, ge=0)


class BreakerOverride(Strict):
    """Per-provider changes to `breaker:` (each model has its own breaker either way)."""

    fail_max: int | None = Field(default=None, ge=1)
    reset_seconds: float | None = Field(default=None, gt=0)


class RateLimitConfig(Strict):
    """Client-side limits: Lukas waits for room instead of provoking 429s, at most `max_wait_seconds`."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    max_wait_seconds: float = Field(default=5.0, ge=0, le=300)

    @property
    def limited(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None


class ProviderConfig(Strict):
    provider: str = Field(min_length=1)  # any-llm provider name: openai, anthropic, mistral, ollama, ...
    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key: SecretStr | None = None
    context_window: int = Field(ge=256)
    price: ModelPrice | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)
    retry: RetryOverride = RetryOverride()
    breaker: BreakerOverride = BreakerOverride()
    rate_limit: RateLimitConfig = RateLimitConfig()

    @field_validator("api_base")
    @classmethod
    def _blank_base_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("api_key")
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None


class StreamingConfig(Strict):
    enabled: bool = False
    flush_interval_seconds: float = Field(default=0.5, ge=0.05, le=10)
    update_interval_seconds: float = Field(default=1.2, ge=0.5, le=30)


class SuggestedPrompt(Strict):
    title: str = Field(min_length=1, max_length=75)
    message: str = Field(min_length=1, max_length=500)


class AssistantConfig(Strict):
    thinking_status: bool = True
    status: str = Field(default="is thinking…", min_length=1, max_length=50)
    loading_messages: list[str] = Field(default_factory=list, max_length=MAX_LOADING_MESSAGES)
    prompts_title: str | None = Field(default=None, max_length=150)
    suggested_prompts: list[SuggestedPrompt] = Field(default_factory=list, max_length=MAX_SUGGESTED_PROMPTS)

    @field_validator("loading_messages")
    @classmethod
    def _no_blank_messages(cls, lines: list[str]) -> list[str]:
        if any(not line.strip() for line in lines):
            raise ValueError("loading messages must not be empty strings")
        return lines

    @model_validator(mode="after")
    def _title_needs_prompts(self) -> AssistantConfig:
        if self.prompts_title and not self.suggested_prompts:
            raise ValueError("prompts_title is set but suggested_prompts is empty")
        return self


def valid_provider_name(name: str) -> str:
    if not PROVIDER_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a usable provider name (letters, digits, '_', '-', '.'; up to 40 characters)"
        )
    return name


def bare_model_name(model: str) -> str:
    """ "openai:gpt-4o" or "openai/gpt-4o" -> "gpt-4o"."""
    return model.split(":", 1)[-1].split("/")[-1]


def price_for(*, prices: Mapping[str, ModelPrice], model: str) -> ModelPrice | None:
    """Exact model name first, then without a provider prefix ("openai:gpt-4o" -> "gpt-4o")."""
    if model in prices:
        return prices[model]
    return prices.get(bare_model_name(model))


def summary_lines(config: Any) -> list[str]:
    """`lukas config check` lines for these sections (a LukasConfig; no import, schema.py imports this module).

    Never shows an API key: only whether a provider has its own.
    """
    lines = []
    if config.providers:
        links = []
        for name in config.chat_chain or list(config.providers):
            p = config.providers[name]
            price = p.price or price_for(prices=config.prices, model=p.model)
            details = [f"{p.context_window}-token window"]
            if price is not None:
                details.append(f"${price.input:g}/${price.output:g} per 1M tokens")
            if p.rate_limit.limited:
                limits = [f"{p.rate_limit.requests_per_minute} req/min"] if p.rate_limit.requests_per_minute else []
                limits += [f"{p.rate_limit.tokens_per_minute} tokens/min"] if p.rate_limit.tokens_per_minute else []
                details.append(", ".join(limits) + f" (waits up to {p.rate_limit.max_wait_seconds:g}s)")
            if p.api_key is not None:
                details.append("own api_key")
            if p.api_base:
                details.append("custom api_base")
            links.append(f"{name} ({p.provider}:{p.model}; {'; '.join(details)})")
        lines.append("chat chain: " + " -> ".join([*links, "fallback lines"]))
        unused = [f"llm.{field}" for field in ("provider", "model", "api_base") if field in config.llm.model_fields_set]
        if unused:
            lines.append(f"note: {', '.join(unused)} not used for chat while providers: is set (the chain decides)")
    else:
        lines.append(f"chat chain: {config.llm.provider}:{config.llm.model} (the llm: block) -> fallback lines")
    assistant = config.assistant
    lines.append(
        f"streaming: {'on' if config.streaming.enabled else 'off'}; thinking status: "
        f"{'on' if assistant.thinking_status else 'off'} ({len(assistant.loading_messages)} loading messages); "
        f"{len(assistant.suggested_prompts)} suggested prompts"
    )
    return lines
