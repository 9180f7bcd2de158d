"""Benchmark (issue 8): time from the model's first token to the first visible text in Slack, streaming on.

The OpenAI stand-in streams each reply word by word with a delay between chunks; the Slack stand-in records when
each call arrives. Per reply: first visible text (chat.startStream in a thread, chat.postMessage in a DM's main
timeline) minus the moment the stand-in sent the first token. Both stand-ins run in this process, on one clock.
The first visible words wait for the second chunk (only whole words are shown, so the output checks can judge
them), so the chunk delay is part of the number. Target: p50 < 300 ms.
Usage: python bench/stream_first_token.py [--replies 50] [--chunk-delay 0.05] [--concurrency 5] [--database-url URL]
(a PostgreSQL URL names the server: the benchmark runs in a fresh database there, dropped afterwards)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from pathlib import Path

from _common import report

from tests.harness import mention_event, message_event, running_lukas
from tests.helpers import postgres_database
from tests.providers.standins import StreamingLLM, call_text

REPLY = "Hello from the honey pot! The bees are humming, the clover is sweet, and I am happy to help you today. 🐻"
VISIBLE = ("chat.startStream", "chat.appendStream", "chat.postMessage", "chat.update")


def channel_for(mode: str, i: int) -> str:
    return f"{'C' if mode == 'thread' else 'D'}0B{i:04d}"


async def run(mode: str, replies: int, chunk_delay: float, concurrency: int, url: str, tmp: Path) -> list[float]:
    llm = StreamingLLM(reply=REPLY)
    llm.stream_chunk_delay = chunk_delay
    done_method = "chat.stopStream" if mode == "thread" else "chat.update"
    async with llm, running_lukas(tmp / mode, url, llm=llm, overrides={"streaming": {"enabled": True}}) as h:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                channel, text = channel_for(mode, i), f"bench {i}"
                event = mention_event(text=text, channel=channel) if mode == "thread" else None
                await h.send(event or message_event(text=text, channel=channel))
                finished = lambda: any(c.params.get("channel") == channel for c in h.slack.calls_to(done_method))  # noqa: E731
                await h.wait_until(finished, timeout=30)

        await asyncio.gather(*(one(i) for i in range(replies)))
        await h.settle(timeout=30)
        first_visible: dict[str, float] = {}
        for call in h.slack.calls:
            if call.method in VISIBLE and call_text(call):
                first_visible.setdefault(call.params.get("channel", ""), call.at)
        latencies = []
        for sent_at, body in llm.first_token_at:
            i = int(str(body["messages"][-1]["content"]).rsplit("bench ", 1)[-1])
            latencies.append((first_visible[channel_for(mode, i)] - sent_at) * 1000)
        used = sorted({c.method for c in h.slack.calls if c.method in VISIBLE})
        print(f"{mode}: {len(latencies)} streamed replies; Slack methods used: {', '.join(used)}")
        return latencies


async def main(replies: int, chunk_delay: float, concurrency: int, database_url: str | None) -> None:
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        if database_url and database_url.startswith("postgresql"):  # a fresh database next to the given one
            url = stack.enter_context(postgres_database(database_url))
        else:
            url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        print(
            f"{replies} replies per mode, {concurrency} at a time, {len(REPLY.split())} chunks of one word, "
            f"{chunk_delay * 1000:.0f} ms between chunks, database {url.split(':')[0]}"
        )
        for mode in ("thread", "dm"):
            latencies = await run(mode, replies, chunk_delay, concurrency, url, Path(tmp))
            print(report(f"first token -> first visible text ({mode})", latencies))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--replies", type=int, default=50)
    parser.add_argument("--chunk-delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.replies, args.chunk_delay, args.concurrency, args.database_url))
