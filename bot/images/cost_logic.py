"""What an image costs and whether the month's budget allows one more. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.config.images_schema import ImagesConfig, ImageTokenPrice

_EPSILON = 1e-9


@dataclass(frozen=True)
class Cost:
    usd: float
    source: str  # "usage" (tokens the API reported) or "price table"


def price_for(*, config: ImagesConfig, model: str, size: str, quality: str) -> float | None:
    """The per-image price listed in images.prices, or None when that combination is not listed."""
    for price in config.prices:
        if (price.model, price.size, price.quality) == (model, size, quality):
            return price.usd
    return None


def missing_price_reason(*, config: ImagesConfig, model: str, size: str, quality: str) -> str:
    listed = sorted({(p.size, p.quality) for p in config.prices if p.model == model})
    if not config.prices:
        hint = "images.prices is empty"
    elif not listed:
        models = ", ".join(sorted({p.model for p in config.prices}))
        hint = f"images.prices has no entry for model {model!r} (it lists: {models}); is the model name right?"
    else:
        shown = ", ".join(f"{size} {quality}" for size, quality in listed)
        hint = f"images.prices lists {model} only for: {shown}"
    return (
        f"no price for {model} {size} {quality}: {hint}. Add "
        f"{{model: {model}, size: {size}, quality: {quality}, usd: ...}} to images.prices so the monthly "
        "budget can be kept"
    )


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def cost_from_usage(*, price: ImageTokenPrice, usage: Mapping[str, Any]) -> float | None:
    """Dollars for the tokens an image API reported (`usage` of an ImagesResponse), or None if unusable."""
    input_tokens = _number(usage.get("input_tokens"))
    output_tokens = _number(usage.get("output_tokens"))
    if not input_tokens and not output_tokens:
        return None
    details = usage.get("input_tokens_details") or {}
    image_in = _number(details.get("image_tokens")) if isinstance(details, Mapping) else 0
    text_in = _number(details.get("text_tokens")) if isinstance(details, Mapping) else 0
    if image_in + text_in != input_tokens:  # no (or inconsistent) breakdown: count everything as text
        text_in, image_in = input_tokens, 0
    image_rate = price.image_input if price.image_input is not None else price.text_input
    return (text_in * price.text_input + image_in * image_rate + output_tokens * price.output) / 1_000_000


def image_cost(
    *, config: ImagesConfig, model: str, size: str, quality: str, usage: Mapping[str, Any] | None
) -> Cost | None:
    """The usage-based cost when the API reported usage and images.token_prices prices the model; else the
    price table's; None when neither is known."""
    token_price = config.token_prices.get(model)
    if usage and token_price is not None:
        usd = cost_from_usage(price=token_price, usage=usage)
        if usd is not None:
            return Cost(round(usd, 6), "usage")
    listed = price_for(config=config, model=model, size=size, quality=quality)
    return Cost(listed, "price table") if listed is not None else None


def budget_allows(*, spent_usd: float, price_usd: float, budget_usd: float) -> bool:
    """True when this month's spending plus the image about to be bought stays within the budget."""
    return spent_usd + price_usd <= budget_usd + _EPSILON


def budget_reason(*, spent_usd: float, price_usd: float, budget_usd: float) -> str:
    return (
        f"budget: ${spent_usd:.3f} spent this month + ${price_usd:.3f} for this image would exceed "
        f"images.monthly_budget_usd (${budget_usd:.2f}); no image was bought"
    )
