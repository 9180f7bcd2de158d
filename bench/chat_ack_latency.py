"""Benchmark 1 (chat issue): HTTP-mode ack latency at 50 events/s for 10 s while each LLM call takes 2 s.

`lukas run` runs as its own process; this process plays Slack and the stand-ins. Target: p99 < 100 ms (issue 24:
<= 15 ms). Each event comes from its own person; the run exits 1 unless every event got the model's answer.
Usage: python bench/chat_ack_latency.py [--rate 50] [--seconds 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp
from _common import answer_problems, answers_asked, fail_on, report, wait_for

from bench._lukas_process import fresh_database, lukas_process
from tests.harness import envelope, message_event, sign
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


async def main(rate: int, seconds: float, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, fresh_database(database_url, Path(tmp)) as url:
        slack, llm = SlackStandIn(), OpenAIStandIn(latency=2.0)
        async with (
            slack,
            llm,
            lukas_process(Path(tmp), database_url=url, slack=slack, llm=llm) as lukas,
            aiohttp.ClientSession() as http,
        ):
            acks: list[float] = []
            statuses: list[int] = []

            async def one(i: int) -> None:
                body = json.dumps(
                    envelope(message_event(text=f"hello {i}", channel=f"D{i:04d}", user=f"U{i:04d}"))
                ).encode()
                started = time.perf_counter()
                async with http.post(lukas.events_url, data=body, headers=sign(body)) as response:
                    await response.read()
                    statuses.append(response.status)
                acks.append((time.perf_counter() - started) * 1000)

            total = int(rate * seconds)
            tasks = []
            start = time.perf_counter()
            for i in range(total):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
            sent_for = time.perf_counter() - start
            await wait_for(lambda: len(slack.calls_to("chat.postMessage")) >= total, timeout=120, poll=0.1)
            answered = {c.params.get("channel") for c in slack.calls_to("chat.postMessage")}
            fail_on(
                answer_problems(
                    expected=total,
                    asked=answers_asked([r.body for r in llm.chat_requests]),
                    texts=slack.posted_texts(),
                    reply=str(llm.reply),
                    missing=[f"D{i:04d}" for i in range(total) if f"D{i:04d}" not in answered],
                )
            )
            print(
                f"sent {total} signed events in {sent_for:.1f} s ({total / sent_for:.1f}/s), LLM latency 2 s, "
                f"database {url.split(':')[0]}, lukas in its own process"
            )
            print(report("ack latency", acks))
            print(f"HTTP 200: {statuses.count(200)}/{total}; replies posted: {len(slack.calls_to('chat.postMessage'))}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds, args.database_url))
