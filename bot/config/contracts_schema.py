"""The `contracts:` section of config.yml: which checks run, in what order, with what settings.

The built-in names, the stages each may run in and their settings models live here, not in
bot.contracts, so `lukas config check` can refuse a bad edit with a line naming the field without
building an engine. bot.contracts.builtins maps the same names to implementations (a test keeps the
two in step).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CHAT_INPUT = "chat_input"
CHAT_OUTPUT = "chat_output"
IMAGE_PROMPT = "image_prompt"
STAGES = (CHAT_INPUT, CHAT_OUTPUT, IMAGE_PROMPT)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoSettings(Strict):
    """This contract takes no settings."""


class PromptLengthSettings(Strict):
    max_chars: int = Field(default=4000, ge=1, le=1_000_000)


class BannedTermsSettings(Strict):
    # newest: only the message being answered (old history already passed when it was new);
    # history: every non-system message in the prompt.
    scope: Literal["newest", "history"] = "newest"
    mask: str = Field(default="***", max_length=50)


class ReplyLengthSettings(Strict):
    min_chars: int = Field(default=1, ge=0, le=100_000)
    max_chars: int = Field(default=3000, ge=1, le=100_000)
    ellipsis: str = Field(default="…", max_length=10)

    @model_validator(mode="after")
    def _range(self) -> ReplyLengthSettings:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) must not exceed max_chars ({self.max_chars})")
        if self.max_chars <= len(self.ellipsis):
            raise ValueError(f"max_chars ({self.max_chars}) must be longer than the ellipsis {self.ellipsis!r}")
        return self


class ReplyPolicySettings(Strict):
    banned_terms: bool = True  # a reply with a banned term is a violation (never fixed)
    secrets: bool = True  # API keys, Slack tokens, ...: redacted when auto_fix is on, else a violation
    redaction: str = Field(default="[redacted]", max_length=50)


@dataclass(frozen=True)
class BuiltinInfo:
    settings: type[BaseModel]
    stages: frozenset[str]
    summary: str


BUILTINS: dict[str, BuiltinInfo] = {
    "not_empty": BuiltinInfo(NoSettings, frozenset(STAGES), "refuses an empty message, reply or prompt"),
    "prompt_length": BuiltinInfo(
        PromptLengthSettings, frozenset({CHAT_INPUT, IMAGE_PROMPT}), "caps the newest message / image prompt"
    ),
    "token_budget": BuiltinInfo(NoSettings, frozenset({CHAT_INPUT}), "keeps prompt + reply within the token budget"),
    "banned_terms": BuiltinInfo(BannedTermsSettings, frozenset(STAGES), "refuses (or masks) banned terms"),
    "reply_length": BuiltinInfo(ReplyLengthSettings, frozenset({CHAT_OUTPUT}), "min/max reply characters"),
    "reply_policy": BuiltinInfo(ReplyPolicySettings, frozenset({CHAT_OUTPUT}), "no banned terms or secrets in replies"),
}


def _settings_problem(name: str, model: type[BaseModel], error: ValidationError) -> str:
    """One readable line for the first settings mistake (the loader prefixes the field path)."""
    item = error.errors()[0]
    field = ".".join(str(part) for part in item["loc"])
    known = list(model.model_fields)
    if item["type"] == "extra_forbidden":
        if not known:
            return f"{name} takes no settings (remove settings.{field})"
        close = difflib.get_close_matches(field, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known settings: {', '.join(known)}"
        return f"{name} has no setting '{field}' ({hint})"
    message = item["msg"].removeprefix("Value error, ")
    where = f" setting '{field}'" if field else " settings"
    given = item.get("input")
    shown = f" (got {given!r})" if field and isinstance(given, str | int | float) else ""
    return f"{name}{where}: {message}{shown}"


def parse_settings(name: str, settings: dict[str, Any]) -> BaseModel:
    """The typed settings of a built-in contract; ValueError with an admin-readable message."""
    model = BUILTINS[name].settings
    try:
        return model.model_validate(settings)
    except ValidationError as exc:
        raise ValueError(_settings_problem(name, model, exc)) from None


class ContractSpec(Strict):
    """One entry of a stage list: `{name: reply_length, auto_fix: false, settings: {max_chars: 2000}}`."""

    stage: ClassVar[str | None] = None

    name: str
    enabled: bool = True
    auto_fix: bool = True  # seed 000's per-contract auto-remediation switch: off turns a fix into a violation
    settings: dict[str, Any] = {}

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        if name not in BUILTINS:
            close = difflib.get_close_matches(name, list(BUILTINS), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ValueError(f"unknown contract {name!r} ({hint}known: {', '.join(BUILTINS)})")
        return name

    @model_validator(mode="after")
    def _fits_stage_and_settings(self) -> ContractSpec:
        info = BUILTINS[self.name]
        if self.stage is not None and self.stage not in info.stages:
            allowed = ", ".join(stage for stage in STAGES if stage in info.stages)
            raise ValueError(f"{self.name} cannot run in {self.stage} (it {info.summary}; allowed in: {allowed})")
        parse_settings(self.name, self.settings)
        return self

    def parsed_settings(self) -> Any:
        return parse_settings(self.name, self.settings)


class ChatInputSpec(ContractSpec):
    stage: ClassVar[str | None] = CHAT_INPUT


class ChatOutputSpec(ContractSpec):
    stage: ClassVar[str | None] = CHAT_OUTPUT


class ImagePromptSpec(ContractSpec):
    stage: ClassVar[str | None] = IMAGE_PROMPT


class ContractBreakerConfig(Strict):
    error_threshold: int = Field(default=3, ge=1)
    cooldown_seconds: float = Field(default=300.0, gt=0)


def _default_chat_input() -> list[ChatInputSpec]:
    return [
        ChatInputSpec(name="not_empty"),
        ChatInputSpec(name="token_budget"),
        ChatInputSpec(name="banned_terms", auto_fix=False),
    ]


def _default_chat_output() -> list[ChatOutputSpec]:
    return [ChatOutputSpec(name="not_empty"), ChatOutputSpec(name="reply_length"), ChatOutputSpec(name="reply_policy")]


def _default_image_prompt() -> list[ImagePromptSpec]:
    return [
        ImagePromptSpec(name="not_empty"),
        ImagePromptSpec(name="prompt_length"),
        ImagePromptSpec(name="banned_terms", auto_fix=False),
    ]


class ContractsConfig(Strict):
    """Omitting a stage list uses the recommended checks; `[]` turns a stage's checks off."""

    banned_terms: list[str] = []
    banned_terms_file: str | None = None
    chat_input: list[ChatInputSpec] = Field(default_factory=_default_chat_input)
    chat_output: list[ChatOutputSpec] = Field(default_factory=_default_chat_output)
    image_prompt: list[ImagePromptSpec] = Field(default_factory=_default_image_prompt)
    breaker: ContractBreakerConfig = ContractBreakerConfig()

    @field_validator("chat_input", "chat_output", "image_prompt", mode="before")
    @classmethod
    def _accept_plain_specs(cls, value: Any) -> Any:
        """Let code pass ContractSpec(...) objects; they are re-validated for the stage they are put in."""
        if isinstance(value, list | tuple):
            return [item.model_dump() if isinstance(item, ContractSpec) else item for item in value]
        return value

    @field_validator("chat_input", "chat_output", "image_prompt")
    @classmethod
    def _each_once(cls, specs: list[ContractSpec]) -> list[ContractSpec]:
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise ValueError(f"{spec.name} is listed twice; each contract runs once per stage")
            seen.add(spec.name)
        return specs

    @field_validator("banned_terms_file")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("banned_terms")
    @classmethod
    def _usable_terms(cls, terms: list[str]) -> list[str]:
        from bot.contracts.normalise import term_problem  # lazy: bot.contracts imports this module

        for index, term in enumerate(terms):
            problem = term_problem(term)
            if problem:
                raise ValueError(f"entry {index + 1} {problem}")
        return terms
