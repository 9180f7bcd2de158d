"""Money arithmetic for the ledger. Pure; prices are US dollars per one million tokens."""

from __future__ import annotations

from collections.abc import Mapping

from bot.config.providers_schema import ModelPrice, price_for

__all__ = ["chat_cost", "cost_at", "price_for"]


def cost_at(price: ModelPrice, *, prompt_tokens: int, completion_tokens: int) -> float:
    return round((prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000, 8)


def chat_cost(
    *, prices: Mapping[str, ModelPrice], model: str, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """Cost of one call, or None when the model has no price in config.yml."""
    price = price_for(prices=prices, model=model)
    if price is None:
        return None
    return cost_at(price, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
