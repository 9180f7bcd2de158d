"""Benchmark 1 (chat issue): HTTP-mode ack latency at 50 events/s for 10 s while each LLM call takes 2 s.

Target: p99 < 100 ms. Usage: python bench/chat_ack_latency.py [--rate 50] [--seconds 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import report

from tests.harness import message_event, running_lukas
from tests.standins.openai_api import OpenAIStandIn


async def main(rate: int, seconds: float, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        llm = OpenAIStandIn(latency=2.0)
        async with llm, running_lukas(Path(tmp), url, llm=llm) as h:
            acks: list[float] = []
            tasks = []
            total = int(rate * seconds)
            start = time.perf_counter()

            async def one(i: int) -> None:
                status, elapsed = await h.send(message_event(text=f"hello {i}", channel=f"D{i % 100:04d}"))
                assert status == 200, status
                acks.append(elapsed * 1000)

            for i in range(total):
                target = start + i / rate
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
            sent_for = time.perf_counter() - start
            await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) >= total, timeout=120)
            print(f"sent {total} signed events in {sent_for:.1f} s ({total / sent_for:.1f}/s), LLM latency 2 s, "
                  f"database {url.split(':')[0]}")
            print(report("ack latency", acks))
            print(f"replies posted: {len(h.slack.calls_to('chat.postMessage'))}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds, args.database_url))
