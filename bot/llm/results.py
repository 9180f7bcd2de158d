"""What a chat request returns: the answer, and one ProviderCall per provider tried (the ledger's LLMCall rows)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderCall:
    """One provider of the chain, tried once (with its retries): one LLMCall row."""

    provider: str  # the chain name (for the llm: block: its any-llm provider, e.g. "openai")
    model: str
    outcome: str
    attempts: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0  # None: the model has no price in config.yml (cost unknown, never shown as $0)
    latency_ms: int = 0


@dataclass(frozen=True)
class ChatResult:
    text: str | None  # None: the model could not answer; use a fallback line
    outcome: str
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0  # None: unknown (no price)
    latency_ms: int = 0
    attempts: int = 0
    finish_reason: str | None = None
    calls: tuple[ProviderCall, ...] = ()  # every provider tried, in chain order; the last one answered if ok
    streamed: bool = False  # some text went to on_delta (so it may be visible in Slack)
    stopped: bool = False  # on_delta asked to stop: `text` is the part read so far

    @property
    def ok(self) -> bool:
        return self.text is not None
