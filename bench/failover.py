"""Failover benchmark: 3 Lukas replicas on one PostgreSQL (+ Redis), every event delivered to two of them by a
stand-in load balancer; one replica is SIGKILLed and one SIGTERMed mid-run.

Prints: questions lost, answered twice, fallback lines (the model never fails here, so every fallback is one the
shutdown caused), and the time from each kill to the last answer taken over from the stopped replica.

    LUKAS_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/failover.py [--questions 60] [--rate 5] [--latency 1.5 3]

Uses the shipped replicas: settings (15 s leases, 3 s sweeps, 10 s shutdown grace) unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._lukas_process import LukasProcess, fresh_database, lukas_process
from tests.harness import envelope, message_event, sign
from tests.standins.openai_api import Chaos, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


class Balancer:
    """Sends every event to two live replicas (a Slack retry or a balancer duplicating to be safe)."""

    def __init__(self, replicas: list[LukasProcess], http: aiohttp.ClientSession) -> None:
        self.replicas = replicas
        self.http = http
        self.refused = 0

    async def deliver(self, index: int, event: dict[str, Any]) -> None:
        live = [r for r in self.replicas if r.alive()]
        targets = [live[(index + k) % len(live)] for k in range(min(2, len(live)))]
        body = json.dumps(envelope(event, event_id=f"EvFO{index:05d}")).encode()
        for attempt, replica in enumerate(targets):
            headers = sign(body)
            if attempt:
                headers.update({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
            try:
                async with self.http.post(replica.events_url, data=body, headers=headers) as response:
                    await response.read()
            except aiohttp.ClientError:
                self.refused += 1


async def _owned_by(database_url: str, pid: int) -> set[int]:
    """Questions the replica with this pid holds (working or posting) right now."""
    from sqlalchemy import select

    from bot.store.db import create_engine
    from bot.store.models import Message

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Message.id).where(
                    Message.lease_owner.like(f"%-{pid}-%"), Message.reply_state.in_(("working", "posting"))
                )
            )
            return {row.id for row in rows}
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace, workdir: Path) -> int:
    server = os.environ.get("LUKAS_BENCH_POSTGRES_URL") or os.environ.get("LUKAS_TEST_POSTGRES_URL")
    if not server:
        print("set LUKAS_BENCH_POSTGRES_URL (replicas need PostgreSQL)")
        return 2
    redis_url = os.environ.get("REDIS_URL")
    env = {"REDIS_URL": redis_url} if redis_url else {}
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    overrides: dict[str, Any] = {"assistant": {"thinking_status": False}}
    if args.grace is not None:
        overrides["replicas"] = {"shutdown_grace_seconds": args.grace}
    slack = SlackStandIn()
    llm = OpenAIStandIn()
    llm.chaos = Chaos(p_500=0, p_429=0, p_timeout=0, latency=(args.latency[0], args.latency[1]))
    with fresh_database(server, workdir) as database_url:
        async with slack, llm, contextlib.AsyncExitStack() as stack:
            replicas = [
                await stack.enter_async_context(
                    lukas_process(
                        workdir / f"r{i}", database_url=database_url, slack=slack, llm=llm, overrides=overrides, env=env
                    )
                )
                for i in range(3)
            ]
            async with aiohttp.ClientSession() as http:
                balancer = Balancer(replicas, http)
                channels = [f"D0FO{i:04d}" for i in range(args.questions)]
                kill_at = args.questions / args.rate * 0.35
                term_at = args.questions / args.rate * 0.6
                started = time.monotonic()
                marks: dict[str, tuple[float, set[int]]] = {}

                async def killer() -> None:
                    await asyncio.sleep(kill_at)
                    victim = replicas[0]
                    victim.process.send_signal(signal.SIGKILL)
                    at = time.monotonic()
                    victim.process.wait()
                    marks["SIGKILL"] = (at, await _owned_by(database_url, victim.process.pid))
                    await asyncio.sleep(term_at - kill_at)
                    stopped = replicas[1]
                    held = await _owned_by(database_url, stopped.process.pid)
                    stopped.process.send_signal(signal.SIGTERM)
                    marks["SIGTERM"] = (time.monotonic(), held)
                    await asyncio.to_thread(stopped.process.wait, 60)

                kill_task = asyncio.create_task(killer())
                sends = []
                for index, channel in enumerate(channels):
                    target = started + index / args.rate
                    await asyncio.sleep(max(target - time.monotonic(), 0))
                    event = message_event(text=f"question {index}", channel=channel, user=f"U0P{index:04d}")
                    sends.append(asyncio.create_task(balancer.deliver(index, event)))
                await asyncio.gather(*sends)
                await kill_task
                deadline = time.monotonic() + args.wait
                while time.monotonic() < deadline:
                    answered = {c.params["channel"] for c in slack.calls_to("chat.postMessage")}
                    if answered >= set(channels):
                        break
                    await asyncio.sleep(0.5)
                await asyncio.sleep(3)  # late duplicates would show up now
    return _report(args, slack, llm, channels, marks, balancer)


def _report(
    args: argparse.Namespace,
    slack: SlackStandIn,
    llm: OpenAIStandIn,
    channels: list[str],
    marks: dict[str, tuple[float, set[int]]],
    balancer: Balancer,
) -> int:
    posts = [c for c in slack.calls_to("chat.postMessage") if c.ok]
    per_channel = Counter(c.params["channel"] for c in posts)
    lost = [c for c in channels if per_channel[c] == 0]
    duplicates = [c for c, n in per_channel.items() if n > 1]
    fallbacks = [c for c in posts if (c.params.get("markdown_text") or c.params.get("text")) != llm.reply]
    print(f"questions: {len(channels)}  (each delivered to two live replicas; {balancer.refused} deliveries refused)")
    print(f"answered: {len(per_channel)}  lost: {len(lost)}  duplicates: {len(duplicates)}")
    print(f"fallback lines (all caused by the shutdown or the kill; the model never fails here): {len(fallbacks)}")
    for kind, (at, held) in marks.items():
        answers = [
            c.at
            for c in posts
            if int((c.params.get("metadata") or {}).get("event_payload", {}).get("question_id", -1)) in held
        ]
        last = f"{max(answers) - at:.1f} s" if answers else "n/a"
        print(
            f"{kind}: the replica held {len(held)} question(s); {len(answers)} answered; signal → last answer: {last}"
        )
    return 0 if not lost and not duplicates and not fallbacks else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--rate", type=float, default=4.0, help="questions per second")
    parser.add_argument("--latency", type=float, nargs=2, default=(1.5, 3.0), help="model latency range, seconds")
    parser.add_argument("--grace", type=float, default=None, help="replicas.shutdown_grace_seconds (default: config)")
    parser.add_argument("--wait", type=float, default=90.0, help="how long to wait for the last answers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lukas-failover-") as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
