"""The `contracts:` section of config.yml: which checks run, in what order, with what settings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ContractSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    enabled: bool = True
    auto_fix: bool = True
    settings: dict[str, Any] = {}


class ContractBreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    error_threshold: int = Field(default=3, ge=1)
    cooldown_seconds: float = Field(default=300.0, gt=0)


class ContractsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    banned_terms: list[str] = []
    banned_terms_file: str | None = None
    chat_input: list[ContractSpec] = []
    chat_output: list[ContractSpec] = []
    image_prompt: list[ContractSpec] = []
    breaker: ContractBreakerConfig = ContractBreakerConfig()
