"""Benchmark 4 (chat issue): trim a 20-message history of ~100k tokens to the budget, using stored counts.

Target: p50 < 1 ms. Counting is done once up front (as Lukas does when a message is stored); the timed part
is fit_to_budget alone, which must never re-tokenise. Usage: python bench/trim_bench.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import time

from _common import report

from bot.tokens.counting import count_message, count_text, truncate_text
from bot.tokens.trimming_logic import PromptMessage, fit_to_budget

MODEL = "gpt-4.1-mini"


def history() -> list[PromptMessage]:
    system = "You are Lukas the Bear, a stuffed animal and beloved mascot of a research team. " * 10
    messages = [PromptMessage(role="system", content=system, tokens=count_message(system, model=MODEL))]
    for i in range(19):
        text = f"Chapter {i}: the bees hum in the meadow and the honey flows. " * 380  # ~5k tokens
        role = "user" if i % 2 == 0 else "assistant"
        messages.append(PromptMessage(role=role, content=text, tokens=count_message(text, model=MODEL)))
    newest = "So, Lukas, what do you think about all of that?"
    messages.append(PromptMessage(role="user", content=newest, tokens=count_message(newest, model=MODEL)))
    return messages


def main(runs: int) -> None:
    messages = history()
    total = sum(m.tokens for m in messages)
    timings = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = fit_to_budget(
            messages=messages,
            budget_tokens=4000,
            reply_tokens=150,
            shorten=lambda text, n: truncate_text(text, max_tokens=n, model=MODEL),
            count=lambda text: count_text(text, model=MODEL),
        )
        timings.append((time.perf_counter() - started) * 1000)
    assert result is not None
    print(f"history: {len(messages)} messages, {total} tokens (stored counts); budget 4000, reply 150")
    print(f"kept {len(result.messages)} messages, dropped {result.dropped}, prompt {result.prompt_tokens} tokens")
    print(report("fit_to_budget", timings))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    main(parser.parse_args().runs)
