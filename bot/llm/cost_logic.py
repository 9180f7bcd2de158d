"""Money arithmetic for the ledger. Pure; prices are US dollars per one million tokens."""

from __future__ import annotations

from collections.abc import Mapping

from bot.config.schema import ModelPrice


def price_for(*, prices: Mapping[str, ModelPrice], model: str) -> ModelPrice | None:
    """Exact model name first, then without a provider prefix ("openai:gpt-4o" -> "gpt-4o")."""
    if model in prices:
        return prices[model]
    bare = model.split(":", 1)[-1].split("/")[-1]
    return prices.get(bare)


def chat_cost(
    *, prices: Mapping[str, ModelPrice], model: str, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """Cost of one call, or None when the model has no price in config.yml."""
    price = price_for(prices=prices, model=model)
    if price is None:
        return None
    return round((prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000, 8)
