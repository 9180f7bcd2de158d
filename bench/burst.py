"""Burst: N direct messages from N people posted at once (default 200), model latency 1.0 s.

`lukas run` runs as its own process (or `--replicas K` processes sharing one PostgreSQL database, every event
delivered to each of them, as Slack may; with `--single-delivery` each event goes to one of them in turn, as Socket
Mode spreads envelopes over its connections: what a second process buys). Prints the time until the last reply
is in Slack, the ack latency (p50/p99/max over every HTTP delivery), the server CPU seconds the burst cost, the
peak number of model requests in flight, and Lukas's RSS at rest before the burst and after it. `--runs 3`
repeats it in fresh processes and databases and prints the medians; `--rate 50` sends a steady stream instead of
one burst. The physical floor is the model's own 1.0 s.

    python bench/burst.py                                                    # SQLite
    python bench/burst.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/burst.py --database-url postgresql://postgres@127.0.0.1:5432/test --replicas 2
    python bench/burst.py --database-url postgresql://postgres@127.0.0.1:5432/test --replicas 2 --single-delivery

`limits.max_in_flight` is raised to N for the burst (the shipped 64 would queue the rest by design); every
message comes from its own person (`--people P`: P people taking turns, each held to the shipped per-person limit
of 20 answers in 10 minutes). The run exits 1, naming what went wrong, if a reply never came within 120 s, came
twice, or was not the model's answer (a slow-down or limit line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
from _common import answer_problems, answers_asked, fail_on, percentile

from bench._lukas_process import LukasProcess, fresh_database, lukas_process
from tests.harness import envelope, message_event, sign
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


@dataclass
class BurstResult:
    wall_s: float
    ack_ms: list[float]
    cpu_s: float
    peak_in_flight: int
    rss_before_mb: float
    rss_after_mb: float
    replies: int
    timeline: str  # when the model requests started and the replies arrived, from the burst's start

    def line(self) -> str:
        return (
            f"last reply after {self.wall_s:.3f} s ({self.replies} replies); ack p50 {percentile(self.ack_ms, 50):.1f} "
            f"p99 {percentile(self.ack_ms, 99):.1f} max {max(self.ack_ms):.1f} ms; server CPU {self.cpu_s:.2f} s "
            f"({self.cpu_s * 1000 / max(self.replies, 1):.1f} ms a message); "
            f"peak model requests in flight {self.peak_in_flight}; RSS {self.rss_before_mb:.1f} -> "
            f"{self.rss_after_mb:.1f} MB\n         {self.timeline}"
        )


def _cpu_seconds(processes: list[LukasProcess]) -> float:
    total = 0.0
    for running in processes:
        times = psutil.Process(running.process.pid).cpu_times()
        total += times.user + times.system
    return total


async def _replies(slack: SlackStandIn, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (posted := len(slack.calls_to("chat.postMessage"))) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.002)
    return posted


async def one_burst(
    *,
    events: int,
    replicas: int,
    database_url: str | None,
    latency: float,
    rate: float = 0,
    people: int = 0,
    shipped_limits: bool = False,
    single_delivery: bool = False,
) -> BurstResult:
    with tempfile.TemporaryDirectory() as tmp, fresh_database(database_url, Path(tmp)) as url:
        slack, llm = SlackStandIn(), OpenAIStandIn(latency=latency)
        overrides = {} if shipped_limits else {"limits": {"max_in_flight": max(64, events)}}
        async with slack, llm, contextlib.AsyncExitStack() as stack:
            lukases = [
                await stack.enter_async_context(
                    lukas_process(Path(tmp) / f"r{i}", database_url=url, slack=slack, llm=llm, overrides=overrides)
                )
                for i in range(replicas)
            ]
            http = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=False))
            )
            acks: list[float] = []

            async def deliver(body: bytes, index: int) -> None:
                """To every replica, or (single delivery) to replica `index` modulo their number."""

                async def to(lukas: LukasProcess) -> None:
                    started = time.perf_counter()
                    async with http.post(lukas.events_url, data=body, headers=sign(body)) as response:
                        assert response.status == 200, response.status
                    acks.append((time.perf_counter() - started) * 1000)

                targets = [lukases[index % len(lukases)]] if single_delivery else lukases
                await asyncio.gather(*(to(lukas) for lukas in targets))

            def dm(i: int, text: str) -> bytes:
                slack.add_user(f"UB{i:05d}", real_name=f"Person {i}")  # a real workspace knows its people
                event = message_event(text=text, channel=f"DB{i:05d}", user=f"UB{i:05d}")
                return json.dumps(envelope(event)).encode()

            for i in range(replicas):  # warm every replica and the connection pool
                await deliver(dm(90_000 + i, "warm up"), i)
            await _replies(slack, replicas, timeout=30)
            await asyncio.sleep(0.5)
            acks.clear()
            warm_replies = len(slack.calls_to("chat.postMessage"))
            llm.peak_in_flight = 0
            rss_before = sum(lukas.rss_mb() for lukas in lukases)
            cpu_before, driver_cpu_before = _cpu_seconds(lukases), time.process_time()
            # --people P: message i comes from person i % P, so each person holds a conversation of events / P turns
            bodies = [dm(i % (people or events), f"Hi Lukas, what do bears dream about? ({i})") for i in range(events)]
            warm_requests = len(llm.chat_requests)
            started, started_monotonic = time.perf_counter(), time.monotonic()
            if rate:  # a steady stream instead of one burst

                async def at(i: int, body: bytes) -> None:
                    await asyncio.sleep(i / rate)
                    await deliver(body, i)

                await asyncio.gather(*(at(i, body) for i, body in enumerate(bodies)))
            else:
                await asyncio.gather(*(deliver(body, i) for i, body in enumerate(bodies)))
            acked = time.perf_counter() - started
            posted = await _replies(slack, warm_replies + events, timeout=120)
            wall = time.perf_counter() - started
            cpu = _cpu_seconds(lukases) - cpu_before
            driver_cpu = time.process_time() - driver_cpu_before
            await asyncio.sleep(0.5)  # late duplicates would show here
            posts = slack.calls_to("chat.postMessage")[warm_replies:]
            owed = Counter(f"DB{i % (people or events):05d}" for i in range(events))
            got = Counter(call.params.get("channel") for call in posts)
            fail_on(
                answer_problems(
                    expected=events,
                    asked=answers_asked([r.body for r in llm.chat_requests[warm_requests:]]),
                    texts=[call.text for call in posts],
                    reply=str(llm.reply),
                    missing=[channel for channel, count in owed.items() if got[channel] < count],
                )
            )
            posted = len(slack.calls_to("chat.postMessage"))
            asked = [r.at - started_monotonic for r in llm.chat_requests[warm_requests:]]
            replied = [c.at - started_monotonic for c in slack.calls_to("chat.postMessage")[warm_replies:]]
            timeline = (
                f"all acked at {acked:.3f} s; model asked from {min(asked):.3f} to {max(asked):.3f} s; "
                f"replies posted from {min(replied):.3f} to {max(replied):.3f} s; this load generator and the "
                f"stand-ins used {driver_cpu:.2f} s of CPU"
            )
            return BurstResult(
                wall_s=wall,
                ack_ms=acks,
                cpu_s=cpu,
                peak_in_flight=llm.peak_in_flight,
                rss_before_mb=rss_before,
                rss_after_mb=sum(lukas.rss_mb() for lukas in lukases),
                replies=posted - warm_replies,
                timeline=timeline,
            )


async def main(args: argparse.Namespace) -> None:
    database = "postgresql" if (args.database_url or "").startswith("postgres") else "sqlite"
    print(
        f"burst: {args.events} DMs from {args.people or args.events} people, model latency {args.latency} s, "
        f"{database}, "
        f"{args.replicas} lukas process(es), "
        + ("each event delivered to one of them in turn" if args.single_delivery else "every event delivered to each")
        + (f", sent at {args.rate:g}/s" if args.rate else ", all at once")
        + (", config.yml's max_in_flight" if args.shipped_limits else "")
    )
    results = []
    for run in range(args.runs):
        result = await one_burst(
            events=args.events,
            replicas=args.replicas,
            database_url=args.database_url,
            latency=args.latency,
            rate=args.rate,
            people=args.people,
            shipped_limits=args.shipped_limits,
            single_delivery=args.single_delivery,
        )
        results.append(result)
        print(f"  run {run + 1}: {result.line()}")
    if args.runs > 1:

        def median(values: list[float]) -> float:
            return statistics.median(values)

        print(
            f"median of {args.runs}: last reply {median([r.wall_s for r in results]):.3f} s; ack p50 "
            f"{median([percentile(r.ack_ms, 50) for r in results]):.1f} p99 "
            f"{median([percentile(r.ack_ms, 99) for r in results]):.1f} max "
            f"{median([max(r.ack_ms) for r in results]):.1f} ms; CPU {median([r.cpu_s for r in results]):.2f} s "
            f"({median([r.cpu_s * 1000 / r.replies for r in results]):.1f} ms a message); "
            f"peak in flight {median([r.peak_in_flight for r in results]):.0f}; RSS "
            f"{median([r.rss_before_mb for r in results]):.1f} -> {median([r.rss_after_mb for r in results]):.1f} MB"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--latency", type=float, default=1.0, help="model latency, seconds")
    parser.add_argument("--replicas", type=int, default=1, help="lukas processes (more than 1 needs PostgreSQL)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0, help="events per second instead of all at once")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temp dir")
    parser.add_argument("--people", type=int, default=0, help="people sending (default: one per event)")
    parser.add_argument(
        "--shipped-limits", action="store_true", help="keep config.yml's max_in_flight (default: raised to --events)"
    )
    parser.add_argument(
        "--single-delivery",
        action="store_true",
        help="with --replicas: each event to one replica in turn (as Socket Mode does), not to every replica",
    )
    args = parser.parse_args()
    if args.replicas > 1 and not (args.database_url or "").startswith("postgres"):
        parser.error("--replicas needs --database-url postgresql://...")
    asyncio.run(main(args))
