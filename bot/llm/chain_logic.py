"""The chat provider chain: which providers, in what order, and where to go after a failure. Pure.

A chain is the configured `chat_chain:` (or every provider under `providers:` in the order listed); with no
`providers:` it is the `llm:` block alone, named after its any-llm provider, so older config files keep working
(and their breaker stays `openai:gpt-4.1-mini`). After the last link come the fallback lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from bot.config.providers_schema import ModelPrice, RateLimitConfig, price_for
from bot.config.schema import LukasConfig, RetryPolicy
from bot.llm import retry_logic as outcomes

# Failures after which another provider would only repeat the refusal (a content filter says no to the words).
_STOP_THE_CHAIN = frozenset({outcomes.CONTENT_FILTER})


@dataclass(frozen=True)
class ProviderSpec:
    """One link of the chain, with every default resolved. `api_key` is a SecretStr: it never shows in a repr."""

    name: str
    provider: str
    model: str
    api_base: str | None
    api_key: SecretStr | None
    context_window: int | None  # None: unknown (the llm: block)
    price: ModelPrice | None
    timeout_seconds: float
    retry: RetryPolicy
    fail_max: int
    reset_seconds: float
    rate_limit: RateLimitConfig | None

    @property
    def key(self) -> str:
        """What breakers and logs call it: `name:model`."""
        return f"{self.name}:{self.model}"


def resolve_chain(config: LukasConfig, *, names: tuple[str, ...] | None = None) -> tuple[ProviderSpec, ...]:
    """The chain as ProviderSpecs; `names` (a channel's `chain:`) picks providers in that order, not chat_chain's."""
    llm = config.llm
    if not config.providers:
        return (
            ProviderSpec(
                name=llm.provider,
                provider=llm.provider,
                model=llm.model,
                api_base=llm.api_base,
                api_key=None,
                context_window=None,
                price=price_for(prices=config.prices, model=llm.model),
                timeout_seconds=llm.timeout_seconds,
                retry=config.retry.chat,
                fail_max=config.breaker.fail_max,
                reset_seconds=config.breaker.reset_seconds,
                rate_limit=None,
            ),
        )
    specs = []
    for name in names or config.chat_chain or list(config.providers):
        p = config.providers[name]
        retry = RetryPolicy.model_validate({**config.retry.chat.model_dump(), **p.retry.model_dump(exclude_none=True)})
        specs.append(
            ProviderSpec(
                name=name,
                provider=p.provider,
                model=p.model,
                api_base=p.api_base,
                api_key=p.api_key,
                context_window=p.context_window,
                price=p.price or price_for(prices=config.prices, model=p.model),
                timeout_seconds=p.timeout_seconds or llm.timeout_seconds,
                retry=retry,
                fail_max=p.breaker.fail_max or config.breaker.fail_max,
                reset_seconds=p.breaker.reset_seconds or config.breaker.reset_seconds,
                rate_limit=p.rate_limit if p.rate_limit.limited else None,
            )
        )
    return tuple(specs)


def counting_model(config: LukasConfig) -> str:
    """The model whose tokenizer counts prompts: the first of the chain."""
    return (
        config.providers[(config.chat_chain or list(config.providers))[0]].model
        if config.providers
        else config.llm.model
    )


def fits_window(*, spec: ProviderSpec, prompt_tokens: int | None, reply_tokens: int) -> bool:
    """Whether prompt + reply fit the model's context window (an unknown window or prompt size: assume so)."""
    if spec.context_window is None or prompt_tokens is None:
        return True
    return prompt_tokens + reply_tokens <= spec.context_window


def next_index(*, chain: tuple[ProviderSpec, ...], index: int, outcome: str) -> int | None:
    """Where the chain goes after link `index` ended with `outcome`: another index, or None (done / fallback line).

    ok -> done. A content filter -> fallback line (another provider would only be asked to say it anyway).
    A context-length error -> the next link with a larger window (same size or unknown would fail the same way).
    Anything else (breaker open, retries used up, rate-limit wait too long, auth, bad request, ...) -> next link.
    """
    if outcome == outcomes.OK or outcome in _STOP_THE_CHAIN:
        return None
    if outcome == outcomes.CONTEXT_LENGTH:
        window = chain[index].context_window or 0
        for later in range(index + 1, len(chain)):
            if (chain[later].context_window or 0) > window:
                return later
        return None
    return index + 1 if index + 1 < len(chain) else None


def worst_case_seconds(chain: tuple[ProviderSpec, ...]) -> float:
    """The longest a whole chain can take: every link's attempts, waits and rate-limit wait (for stale claims)."""
    total = 0.0
    for spec in chain:
        policy = spec.retry
        longest_wait = max(policy.wait_max_seconds + policy.jitter_seconds, policy.max_retry_after_seconds)
        total += policy.attempts * (spec.timeout_seconds + 5) + (policy.attempts - 1) * longest_wait
        if spec.rate_limit is not None:
            total += policy.attempts * spec.rate_limit.max_wait_seconds
    return total
