"""Benchmark (issue 8): time from the model's first token to the first visible text in Slack, streaming on.

The OpenAI stand-in streams each reply word by word with a delay between chunks; the Slack stand-in records when
each call arrives. Per reply: first visible text (chat.startStream in a thread, chat.postMessage in a DM's main
timeline) minus the moment the stand-in sent the first token. Both stand-ins run in this process, on one clock.
The first visible words wait for the second chunk (only whole words are shown, so the output checks can judge
them), so the chunk delay is part of the number. Target: p50 < 300 ms (issue 24: p50 <= 50 ms).
Each reply comes from its own person, so no limit answers instead of the model; the benchmark exits 1, naming
what went wrong, if a reply never came or was not the model's answer.
Usage: python bench/stream_first_token.py [--replies 50] [--chunk-delay 0.05] [--concurrency 5] [--database-url URL]
(a PostgreSQL URL names the server: the benchmark runs in a fresh database there, dropped afterwards)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from pathlib import Path

from _common import answer_problems, answers_asked, fail_on, report, wait_for

from tests.harness import mention_event, message_event, running_lukas
from tests.helpers import postgres_database
from tests.providers.standins import StreamingLLM, call_text, streamed_text
from tests.standins.slack_api import SlackStandIn

REPLY = "Hello from the honey pot! The bees are humming, the clover is sweet, and I am happy to help you today. 🐻"
VISIBLE = ("chat.startStream", "chat.appendStream", "chat.postMessage", "chat.update")


def channel_for(mode: str, i: int) -> str:
    return f"{'C' if mode == 'thread' else 'D'}0B{i:04d}"


def person_for(i: int) -> str:
    """Each reply its own person: one person asking 100 times would meet the per-person limit (20 in 10 min)."""
    return f"U0B{i:04d}"


def shown_text(slack: SlackStandIn, mode: str, channel: str) -> str | None:
    """What Slack shows in `channel` now: the stream so far (thread), else the post as last updated (None: nothing).
    A reply that arrived whole before the stream began is a plain post."""
    if mode == "thread" and any(c.params.get("channel") == channel for c in slack.calls_to("chat.startStream")):
        return streamed_text(slack, channel)
    shown = [
        c for c in slack.calls if c.method in ("chat.postMessage", "chat.update") and c.params.get("channel") == channel
    ]
    return call_text(shown[-1]) if shown else None


async def run(mode: str, replies: int, chunk_delay: float, concurrency: int, url: str, tmp: Path) -> list[float]:
    llm = StreamingLLM(reply=REPLY)
    llm.stream_chunk_delay = chunk_delay
    async with llm, running_lukas(tmp / mode, url, llm=llm, overrides={"streaming": {"enabled": True}}) as h:
        gate = asyncio.Semaphore(concurrency)
        for i in range(replies):
            h.slack.add_user(person_for(i), real_name=f"Person {i}")

        async def one(i: int) -> None:
            async with gate:
                channel, text, user = channel_for(mode, i), f"bench {i}", person_for(i)
                if mode == "thread":
                    await h.send(mention_event(text=text, channel=channel, user=user))
                else:
                    await h.send(message_event(text=text, channel=channel, user=user))
                await wait_for(lambda: shown_text(h.slack, mode, channel) == REPLY, timeout=30)

        await asyncio.gather(*(one(i) for i in range(replies)))
        finals = {channel_for(mode, i): shown_text(h.slack, mode, channel_for(mode, i)) for i in range(replies)}
        fail_on(
            answer_problems(
                expected=replies,
                asked=answers_asked([r.body for r in llm.chat_requests]),
                texts=[text for text in finals.values() if text is not None],
                reply=REPLY,
                missing=[channel for channel, text in finals.items() if text is None],
            )
        )
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
