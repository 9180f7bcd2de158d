"""Shared helpers: a fake clock, fresh metrics, and prompt builders with real token counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config.contracts_schema import ContractsConfig
from bot.contracts import ChatCandidate, ContractEngine, ContractMetrics
from bot.tokens.counting import count_message
from bot.tokens.trimming_logic import PromptMessage

MODEL = "gpt-4.1-mini"


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def message(role: str, text: str) -> PromptMessage:
    return PromptMessage(role=role, content=text, tokens=count_message(text, model=MODEL))


def candidate(*texts: str, system: str = "You are Lukas the Bear.", budget: int = 4000, reply: int = 150):
    """[system, alternating user/assistant history..., newest user message]; the last text is the newest."""
    roles = ["user" if (len(texts) - 1 - index) % 2 == 0 else "assistant" for index in range(len(texts))]
    messages = [message("system", system)] + [message(role, text) for role, text in zip(roles, texts, strict=True)]
    return ChatCandidate(messages=messages, budget_tokens=budget, reply_tokens=reply, model=MODEL)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics() -> ContractMetrics:
    return ContractMetrics()


@pytest.fixture
def build(metrics: ContractMetrics, clock: FakeClock, tmp_path: Path):
    """build(**contracts_section) -> ContractEngine with fresh metrics and the fake clock."""

    def make(**section: Any) -> ContractEngine:
        config = ContractsConfig.model_validate(section)
        return ContractEngine.from_config(config, base_dir=tmp_path, metrics=metrics, clock=clock)

    return make
