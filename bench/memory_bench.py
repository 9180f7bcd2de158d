"""Memory benchmark (issue 15): what memory costs an answer, and the token budget with a 200-message conversation.

1. Pipeline overhead per message (accept + answer, model and Slack instant and in-process) with memory off and on,
   on a conversation long enough to have a summary. Summaries are written in the background after the reply: the
   keeper is drained between messages, so the figures are the answer's own work; the refreshes are timed apart.
   Target: memory adds < 2 ms to an answer.
2. A 200-message DM with memory on and a summary model that answers far beyond its cap: every answer's prompt
   (persona + summary + window) must fit llm.context_budget_tokens - llm.max_tokens, every summary its cap.
Usage: python bench/memory_bench.py [--messages 200] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import NO_LIMITS, answer_problems, bench_config, fail_on, inline_chat, report

from bot.llm.gateway import ChatResult
from bot.store import migrate
from bot.tokens.counting import REPLY_PRIMING_TOKENS, count_message

REPLY = "Honey-sweet answer 🐻 " * 8


class InstantModel:
    """Answers at once; summary requests get a long echo of their input (to exercise the cap)."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    async def complete(self, messages: list[dict[str, Any]], **_options: Any) -> ChatResult:
        self.requests.append(messages)
        summary = messages[0]["content"].startswith("You keep")
        text = (messages[-1]["content"] * 3) if summary else REPLY
        return ChatResult(
            text=text,
            outcome="ok",
            provider="openai",
            model="gpt-4.1-mini",
            prompt_tokens=100,
            completion_tokens=10,
            attempts=1,
            cost_usd=0.0001,
        )


def is_summary(messages: list[dict[str, Any]]) -> bool:
    return messages[0]["content"].startswith("You keep")


async def run(url: str, *, memory: bool, count: int, warmup: int, folder: Path) -> dict[str, Any]:
    # One person's long DM on purpose (it needs a summary): the limits are off, or it would time slow-down lines.
    config = bench_config({"memory": {"enabled": memory}, **NO_LIMITS}, folder=folder)
    model = InstantModel()
    chat, send, replies = inline_chat(config=config, database_url=url, model=model, tag=f"MEM{int(memory)}")
    refreshes: list[float] = []

    async def one(i: int) -> float:
        started = time.perf_counter()
        await send(i)
        elapsed = (time.perf_counter() - started) * 1000
        if chat.memory.in_flight:  # the background refresh, timed apart from the answer
            begun = time.perf_counter()
            await chat.memory.flush(30)
            refreshes.append((time.perf_counter() - begun) * 1000)
        return elapsed

    for i in range(warmup):
        await one(-i - 1)
    timings = [await one(i) for i in range(count)]
    llm = config.current.llm
    allowed = llm.context_budget_tokens - llm.max_tokens
    answers = [m for m in model.requests if not is_summary(m)]
    fail_on(answer_problems(expected=warmup + count, asked=len(answers), texts=replies(), reply=REPLY))
    used = [sum(count_message(m["content"], model=llm.model) for m in msgs) + REPLY_PRIMING_TOKENS for msgs in answers]
    with_summary = [m for m in answers if len(m) > 1 and m[1]["content"].startswith("Earlier in this conversation")]
    summary_tokens = [count_message(m[1]["content"], model=llm.model) for m in with_summary]
    chat._store.close()
    return {
        "timings": timings,
        "refreshes": refreshes,
        "allowed": allowed,
        "max_used": max(used),
        "over": sum(1 for u in used if u > allowed),
        "answers": len(answers),
        "with_summary": len(with_summary),
        "summary_tokens_max": max(summary_tokens, default=0),
        "summary_cap": config.current.memory.max_summary_tokens,
        "outcomes": [o for _c, o in chat.memory.outcomes],
    }


async def main(count: int, database_url: str | None) -> None:
    baseline: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for memory in (False, True):
            url = database_url or f"sqlite+aiosqlite:///{tmp}/bench-{int(memory)}.db"
            await asyncio.to_thread(migrate.upgrade, url)
            result = await run(url, memory=memory, count=count, warmup=40, folder=Path(tmp))
            label = "on " if memory else "off"
            print(report(f"memory {label}: answer's own work per message (model and Slack instant)", result["timings"]))
            if memory:
                delta_p50 = statistics.median(result["timings"]) - statistics.median(baseline)
                delta_mean = statistics.fmean(result["timings"]) - statistics.fmean(baseline)
                print(f"memory adds to an answer: p50 {delta_p50:+.2f} ms, mean {delta_mean:+.2f} ms (target < 2 ms)")
                if result["refreshes"]:
                    print(
                        report(
                            "background summary refresh (after the reply, not in the figures above)",
                            result["refreshes"],
                        )
                    )
                print(
                    f"token budget, {count + 40}-message DM ({2 * (count + 40)} stored messages): "
                    f"{result['answers']} answers, largest prompt {result['max_used']} of {result['allowed']} tokens "
                    f"allowed, {result['over']} over; {result['with_summary']} carried a summary, the longest "
                    f"{result['summary_tokens_max']} tokens (cap {result['summary_cap']} + prefix)"
                )
                kinds = {o: result["outcomes"].count(o) for o in sorted(set(result["outcomes"]))}
                print(f"summary refreshes: {kinds}")
            else:
                baseline = result["timings"]
            print(f"database {url.split(':')[0]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.database_url))
