"""Benchmark 3 (chat issue): pipeline overhead per message with the LLM and Slack taken out.

Measures accept (classify, dedupe, store) + answer (claim, history load of a 20-message conversation, token
counting, trimming, contracts, persistence of reply and ledger row) on a real database, with an instant
in-process model and Slack. Target: p50 < 5 ms on SQLite.
Usage: python bench/chat_pipeline_overhead.py [--messages 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

from _common import report

from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.contracts.live import ContractsHolder
from bot.llm.gateway import ChatResult
from bot.store import migrate
from bot.store.db import create_engine
from bot.store.units import UnitRunner
from tests.harness import REPO_CONFIG, message_event
from tests.standins.recording_platform import RecordingPlatform


class InstantModel:
    async def complete(self, messages: list[dict[str, Any]], **_options: Any) -> ChatResult:
        return ChatResult(
            text="Honey-sweet answer 🐻",
            outcome="ok",
            provider="openai",
            model="gpt-4.1-mini",
            prompt_tokens=100,
            completion_tokens=10,
            attempts=1,
        )


async def main(count: int, database_url: str | None) -> None:
    from bot.chat.service import ChatService

    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        await asyncio.to_thread(migrate.upgrade, url)
        config = LiveConfig(load_config(REPO_CONFIG), path=REPO_CONFIG)
        chat = ChatService(
            config=config,
            store=UnitRunner(create_engine(url)),
            platform=RecordingPlatform(names={"U0ANNA": "Anna"}),
            gateway=InstantModel(),
            contracts=ContractsHolder(config),
        )  # type: ignore[arg-type]
        scheduled: list[int] = []
        chat.schedule = scheduled.append  # type: ignore[method-assign]  # answered inline below, to time it
        channel = f"DBENCH{time.time_ns() % 10_000_000}"

        async def one(i: int) -> float:
            event = message_event(text=f"Tell me about bees, part {i}. " * 3, channel=channel)
            started = time.perf_counter()
            await chat.accept_event(
                event=event,
                event_type="message",
                event_id=f"EvB{channel}{i}",
                team_id="T0TEAM",
                bot_user_id="UBOT",
                bot_id="BBOT",
            )
            await chat.answer(scheduled.pop())
            return (time.perf_counter() - started) * 1000

        for i in range(20):  # build up a full 20-message history first
            await one(-i - 1)
        cpu_started = time.process_time()
        timings = [await one(i) for i in range(count)]
        cpu_ms = (time.process_time() - cpu_started) * 1000 / count
        print(f"database {url.split(':')[0]}, history window 20 messages, {count} messages")
        print(report("pipeline overhead per message (LLM and Slack excluded)", timings))
        print(f"CPU time per message (all threads of this process): {cpu_ms:.2f} ms")
        chat._store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.database_url))
