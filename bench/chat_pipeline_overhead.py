"""Benchmark 3 (chat issue): pipeline overhead per message with the LLM and Slack taken out.

Measures accept (classify, dedupe, store) + answer (claim, history load of a 20-message conversation, token
counting, trimming, contracts, persistence of reply and ledger row) on a real database, with an instant
in-process model and Slack. Target: p50 < 5 ms on SQLite (issue 24: <= 2 ms with memory on). Exits 1 if any
reply was not the model's answer (a limit or fallback line would time another path).
Usage: python bench/chat_pipeline_overhead.py [--messages 300] [--database-url URL] [--limits]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import NO_LIMITS, answer_problems, answers_asked, bench_config, fail_on, inline_chat, report

from bot.llm.gateway import ChatResult
from bot.store import migrate

REPLY = "Honey-sweet answer 🐻"


class InstantModel:
    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    async def complete(self, messages: list[dict[str, Any]], **_options: Any) -> ChatResult:
        self.requests.append(messages)
        return ChatResult(
            text=REPLY,
            outcome="ok",
            provider="openai",
            model="gpt-4.1-mini",
            prompt_tokens=100,
            completion_tokens=10,
            attempts=1,
        )


# One person writes every message of one long conversation, on purpose (a 20-message history behind each answer):
# the limits are off (NO_LIMITS), else the shipped 20 answers per person would make it time slow-down lines.
# --limits: per-person and per-conversation windows on, so judging each message is measured too. Never full here;
# short, so each holds a few dozen answers, as the default limits' windows do at most (20 and 60).
ROOMY_LIMITS = {
    "limits": {
        "per_person": {"messages": 100_000, "window_seconds": 1},
        "per_conversation": {"messages": 100_000, "window_seconds": 2},
    }
}


async def main(count: int, database_url: str | None, *, limits: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        await asyncio.to_thread(migrate.upgrade, url)
        config = bench_config(ROOMY_LIMITS if limits else NO_LIMITS, folder=Path(tmp))
        model = InstantModel()
        chat, send, replies = inline_chat(config=config, database_url=url, model=model, tag="BENCH")

        async def one(i: int) -> float:
            started = time.perf_counter()
            await send(i)
            return (time.perf_counter() - started) * 1000

        for i in range(20):  # build up a full 20-message history first
            await one(-i - 1)
        cpu_started = time.process_time()
        timings = [await one(i) for i in range(count)]
        cpu_ms = (time.process_time() - cpu_started) * 1000 / count
        asked = answers_asked([{"messages": messages} for messages in model.requests])
        fail_on(answer_problems(expected=20 + count, asked=asked, texts=replies(), reply=REPLY))
        print(f"database {url.split(':')[0]}, history window 20 messages, {count} messages, limits {limits}")
        print(report("pipeline overhead per message (LLM and Slack excluded)", timings))
        print(f"CPU time per message (all threads of this process): {cpu_ms:.2f} ms")
        chat._store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--limits", action="store_true", help="judge every message by roomy per-person limits")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.database_url, limits=args.limits))
