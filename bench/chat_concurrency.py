"""Benchmark 2 (chat issue): 50 conversations at once, 1 s LLM latency: wall time until all 50 replies are in Slack.

Target: <= 1.5 s (nothing may serialise the calls). Usage: python bench/chat_concurrency.py [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import ROOT  # noqa: F401  (puts the repo on sys.path)

from tests.harness import message_event, running_lukas
from tests.standins.openai_api import OpenAIStandIn


async def main(conversations: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        llm = OpenAIStandIn(latency=1.0)
        async with llm, running_lukas(Path(tmp), url, llm=llm) as h:
            await h.send(message_event(text="warm up", channel="DWARM"))
            await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
            start = time.perf_counter()
            await asyncio.gather(*(h.send(message_event(text=f"hi {i}", channel=f"DC{i:04d}"))
                                   for i in range(conversations)))
            await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == conversations + 1, timeout=60)
            wall = time.perf_counter() - start
            print(f"{conversations} conversations, LLM latency 1.0 s, database {url.split(':')[0]}: "
                  f"all replies in Slack after {wall:.3f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.conversations, args.database_url))
