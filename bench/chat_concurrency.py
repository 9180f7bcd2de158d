"""Benchmark 2 (chat issue): 50 conversations at once, 1 s LLM latency: wall time until all 50 replies are in Slack.

`lukas run` runs as its own process. Target: <= 1.5 s (nothing may serialise the calls). Each conversation is its
own person; the run exits 1 unless every conversation got the model's answer (none left out after 60 s).
Usage: python bench/chat_concurrency.py [--conversations 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp
from _common import answer_problems, answers_asked, fail_on, wait_for

from bench._lukas_process import fresh_database, lukas_process
from tests.harness import envelope, message_event, sign
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


async def wait_for_posts(slack: SlackStandIn, count: int, timeout: float = 60) -> None:
    await wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= count, timeout=timeout, poll=0.005)


async def main(conversations: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, fresh_database(database_url, Path(tmp)) as url:
        slack, llm = SlackStandIn(), OpenAIStandIn(latency=1.0)
        async with (
            slack,
            llm,
            lukas_process(Path(tmp), database_url=url, slack=slack, llm=llm) as lukas,
            aiohttp.ClientSession() as http,
        ):

            async def send(channel: str, text: str) -> None:  # each conversation its own person: no per-person limit
                body = json.dumps(envelope(message_event(text=text, channel=channel, user=f"U{channel}"))).encode()
                async with http.post(lukas.events_url, data=body, headers=sign(body)) as response:
                    assert response.status == 200, response.status

            await send("DWARM", "warm up")
            await wait_for_posts(slack, 1)
            start = time.perf_counter()
            await asyncio.gather(*(send(f"DC{i:04d}", f"hi {i}") for i in range(conversations)))
            acked = time.perf_counter() - start
            await wait_for_posts(slack, conversations + 1)
            wall = time.perf_counter() - start
            answered = {c.params.get("channel") for c in slack.calls_to("chat.postMessage")}
            channels = ["DWARM", *(f"DC{i:04d}" for i in range(conversations))]
            fail_on(
                answer_problems(
                    expected=conversations + 1,
                    asked=answers_asked([r.body for r in llm.chat_requests]),
                    texts=slack.posted_texts(),
                    reply=str(llm.reply),
                    missing=[channel for channel in channels if channel not in answered],
                )
            )
            spread = max(r.at for r in llm.chat_requests[1:]) - min(r.at for r in llm.chat_requests[1:])
            print(
                f"{conversations} conversations, LLM latency 1.0 s, database {url.split(':')[0]}, lukas in its own "
                f"process: all acked after {acked:.3f} s, all {len(slack.calls_to('chat.postMessage')) - 1} replies "
                f"in Slack after {wall:.3f} s (LLM requests spread over {spread:.3f} s)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.conversations, args.database_url))
