"""The cost ledger's rows for one answer. Pure.

One LLMCall row per provider the chain tried, in chain order: provider (the chain name; for the llm: block its
any-llm provider, e.g. "openai"), model, tokens, cost, latency, attempts and outcome. The last row is the one that
answered when its outcome is "ok"; every earlier row is a provider that could not answer and handed over to the
next (a fallback along the chain), and a chain ending in a failed row was answered with a fallback line.
"""

from __future__ import annotations

from bot.llm.results import ChatResult, ProviderCall


def ledger_rows(
    *, result: ChatResult | None, conversation_id: int | None, purpose: str = "chat"
) -> list[dict[str, object]]:
    if result is None:  # the model was never asked (the input checks refused the message)
        return []
    calls = result.calls or (  # a result from before the chain (one call, described by the result itself)
        ProviderCall(
            provider=result.provider,
            model=result.model,
            outcome=result.outcome,
            attempts=result.attempts,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cost_usd=result.cost_usd,
            latency_ms=result.latency_ms,
        ),
    )
    return [
        {
            "conversation_id": conversation_id,
            "purpose": purpose,
            "provider": call.provider,
            "model": call.model,
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": call.completion_tokens,
            "cost_usd": call.cost_usd,
            "latency_ms": call.latency_ms,
            "attempts": call.attempts,
            "outcome": call.outcome,
        }
        for call in calls
    ]


def ledger_cost(rows: list[dict[str, object]]) -> float:
    """What the rows cost in dollars; calls of unknown cost (no price) add nothing they can be sure of."""
    return sum(float(cost) for row in rows if isinstance(cost := row.get("cost_usd"), int | float))
