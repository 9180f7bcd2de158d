"""The typed shape of config.yml. Every model forbids unknown keys: a typo must be an error, not a no-op."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bot.config.channels_schema import ChannelRule, PicturesConfig, channel_key_problem
from bot.config.contracts_schema import ContractsConfig
from bot.config.guards_schema import LimitsConfig, RetentionConfig
from bot.config.images_schema import ImagesConfig
from bot.config.memory_schema import MemoryConfig
from bot.config.providers_schema import (
    AssistantConfig,
    ModelPrice,
    ProviderConfig,
    StreamingConfig,
    valid_provider_name,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PersonaConfig(Strict):
    name: str = "Lukas"
    system_prompt: str = Field(min_length=1)


class LLMConfig(Strict):
    provider: str = "openai"
    model: str = "gpt-4o-mini"
    api_base: str | None = None
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=150, ge=1, le=32_000)
    context_budget_tokens: int = Field(default=4000, ge=256)
    history_size: int = Field(default=20, ge=1, le=200)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    default_encoding: Literal["cl100k_base", "o200k_base"] = "cl100k_base"

    @field_validator("api_base")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _budget_leaves_room(self) -> LLMConfig:
        if self.max_tokens >= self.context_budget_tokens:
            raise ValueError(
                f"max_tokens ({self.max_tokens}) must be smaller than context_budget_tokens "
                f"({self.context_budget_tokens}), or no room is left for the conversation"
            )
        return self


class RetryPolicy(Strict):
    attempts: int = Field(ge=1, le=10)
    wait_min_seconds: float = Field(ge=0)
    wait_max_seconds: float = Field(ge=0)
    multiplier: float = Field(default=1.0, gt=0)
    jitter_seconds: float = Field(default=1.0, ge=0)
    respect_retry_after: bool = True
    max_retry_after_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _min_below_max(self) -> RetryPolicy:
        if self.wait_min_seconds > self.wait_max_seconds:
            raise ValueError("wait_min_seconds must not exceed wait_max_seconds")
        return self


class RetryConfig(Strict):
    chat: RetryPolicy = RetryPolicy(attempts=3, wait_min_seconds=1, wait_max_seconds=10, multiplier=1)
    images: RetryPolicy = RetryPolicy(attempts=2, wait_min_seconds=4, wait_max_seconds=60, multiplier=2)


class BreakerConfig(Strict):
    fail_max: int = Field(default=5, ge=1)
    reset_seconds: float = Field(default=60.0, gt=0)


class FallbackConfig(Strict):
    lines: list[str] = Field(min_length=1)
    refusal_lines: list[str] = Field(min_length=1)

    @field_validator("lines", "refusal_lines")
    @classmethod
    def _no_blank_lines(cls, lines: list[str]) -> list[str]:
        if any(not line.strip() for line in lines):
            raise ValueError("lines must not be empty strings")
        return lines


class LoggingConfig(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = Field(default=False, alias="json")


class DatabaseConfig(Strict):
    upgrade_on_start: bool = True


class SlackConfig(Strict):
    user_cache_seconds: int = Field(default=3600, ge=0)
    max_message_chars: int = Field(default=3900, ge=100, le=40_000)
    admin_alert_interval_seconds: int = Field(default=3600, ge=0)
    auth_retry_seconds: float = Field(default=20.0, ge=0, le=600)


class ReloadConfig(Strict):
    """How a running Lukas notices edits to config.yml (`/lukas reload` works either way)."""

    watch: bool = True
    poll_seconds: float = Field(default=2.0, ge=0.1, le=300)


class ReplicasConfig(Strict):
    """Several Lukas processes on one database: how claims on answers are leased, renewed and handed back."""

    lease_seconds: float = Field(default=15.0, ge=2, le=600)
    sweep_seconds: float = Field(default=3.0, ge=0.1, le=300)
    posting_grace_seconds: float = Field(default=45.0, ge=1, le=3600)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    slack_max_retry_after_seconds: float = Field(default=30.0, ge=0, le=600)


class UsageConfig(Strict):
    """What the admin reports compare against, and how often live metrics are saved for `lukas stats`."""

    chat_monthly_budget_usd: float | None = Field(default=None, ge=0)  # enforced: at it, Lukas rests (limits:)
    metrics_snapshot_seconds: float = Field(default=30.0, ge=1, le=3600)


def _usable_provider(provider: ProviderConfig, info: ValidationInfo) -> ProviderConfig:
    """A named provider needs a retry override that makes sense. A missing price is only a warning of
    `lukas config check` (issue 18): the cost of that model is recorded and shown as unknown."""
    retry = info.data.get("retry")
    if retry is not None:
        merged = {**retry.chat.model_dump(), **provider.retry.model_dump(exclude_none=True)}
        if merged["wait_min_seconds"] > merged["wait_max_seconds"]:
            raise ValueError(
                "retry: wait_min_seconds must not exceed wait_max_seconds "
                "(settings left out of this provider's retry: come from retry.chat)"
            )
    return provider


def _defined_provider(name: str, info: ValidationInfo) -> str:
    providers = info.data.get("providers")
    if providers is None or name in providers:  # None: providers: itself is invalid, and reported as such
        return name
    if not providers:
        raise ValueError(
            f"{name!r} is not defined: chat_chain lists names from providers:, which is empty "
            "(without providers:, the llm: block is the one chat model)"
        )
    close = difflib.get_close_matches(name, list(providers), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"defined: {', '.join(providers)}"
    raise ValueError(f"{name!r} is not defined under providers: ({hint})")


ProviderName = Annotated[str, AfterValidator(valid_provider_name)]


def _channel_key(key: str) -> str:
    problem = channel_key_problem(key)
    if problem is not None:
        raise ValueError(problem)
    return key


def _rule_chain_defined(rule: ChannelRule, info: ValidationInfo) -> ChannelRule:
    """A channel's `chain` names providers from providers: (the llm: block alone has no names to choose from)."""
    providers = info.data.get("providers")
    if rule.chain is None or providers is None:
        return rule
    if not providers:
        raise ValueError("chain: needs named providers under providers: (with only the llm: block there is no choice)")
    for name in rule.chain:
        if name not in providers:
            close = difflib.get_close_matches(name, list(providers), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"defined: {', '.join(providers)}"
            raise ValueError(f"chain: {name!r} is not defined under providers: ({hint})")
    return rule


ChannelKey = Annotated[str, AfterValidator(_channel_key)]


class LukasConfig(Strict):
    persona: PersonaConfig
    llm: LLMConfig = LLMConfig()
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    fallbacks: FallbackConfig
    images: ImagesConfig = ImagesConfig()
    contracts: ContractsConfig = ContractsConfig()
    admins: list[str] = []
    prices: dict[str, ModelPrice] = {}
    slack: SlackConfig = SlackConfig()
    logging: LoggingConfig = LoggingConfig()
    database: DatabaseConfig = DatabaseConfig()
    reload: ReloadConfig = ReloadConfig()
    usage: UsageConfig = UsageConfig()
    replicas: ReplicasConfig = ReplicasConfig()
    # Declared after retry and prices: their validators read those (info.data follows field order).
    providers: dict[ProviderName, Annotated[ProviderConfig, AfterValidator(_usable_provider)]] = {}
    chat_chain: list[Annotated[str, AfterValidator(_defined_provider)]] = []
    streaming: StreamingConfig = StreamingConfig()
    assistant: AssistantConfig = AssistantConfig()
    limits: LimitsConfig = LimitsConfig()
    retention: RetentionConfig = RetentionConfig()
    # Declared after providers: (a channel's chain names them).
    channels: dict[ChannelKey, Annotated[ChannelRule, AfterValidator(_rule_chain_defined)]] = {}
    pictures: PicturesConfig = PicturesConfig()
    memory: MemoryConfig = MemoryConfig()

    @model_validator(mode="after")
    def _memory_provider_defined(self) -> LukasConfig:
        name = self.memory.provider
        if name is not None and name not in self.providers:
            defined = ", ".join(self.providers) or "none"
            raise ValueError(f"memory.provider {name!r} is not defined under providers: (defined: {defined})")
        return self

    @field_validator("chat_chain")
    @classmethod
    def _each_provider_once(cls, chain: list[str]) -> list[str]:
        for index, name in enumerate(chain):
            if name in chain[:index]:
                raise ValueError(f"{name!r} is listed twice (entries {chain.index(name)} and {index})")
        return chain

    @field_validator("admins")
    @classmethod
    def _slack_user_ids(cls, admins: list[str]) -> list[str]:
        for admin in admins:
            if not re.fullmatch(r"[UW][A-Z0-9]{2,}", admin):
                raise ValueError(f"{admin!r} is not a Slack user ID (they look like 'U012AB3CD')")
        return admins
