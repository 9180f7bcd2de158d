"""Fault and load soak: prove that nothing is lost and nothing is answered twice.

Starts `lukas run` (HTTP mode, a real subprocess) against loopback stand-ins, then plays Slack: signed events
over many conversations (DMs, mentions, thread follow-ups, the message event that accompanies a mention),
redeliveries, unsigned and malformed requests, while the model stand-in injects 500s, 429s with Retry-After,
timeouts and 0.1-2 s latency and the Slack stand-in answers some posts with `ratelimited`. Optionally restarts
PostgreSQL in the middle. Prints the ledger; exits 1 unless lost == 0 and duplicates == 0 and Lukas survived.

    python bench/soak.py                                   # SQLite, 1,000 messages over 100 conversations
    python bench/soak.py --messages 10000                  # 10,000: 100 turns per conversation
    python bench/soak.py --database-url postgresql://postgres@127.0.0.1:5432/test --restart-postgres-at 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile
from bench._lukas_process import fresh_database, lukas_process
from tests.harness import envelope, mention_event, message_event, new_ts, sign
from tests.standins.openai_api import Chaos, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

FALLBACK_MARKERS = (
    "🐻 Can you try again",
    "bear brain",
    "trouble thinking",
    "stuffing got",
    "too much honey",
    "Paws for a moment",
)


@dataclass
class SoakParams:
    database_url: str | None = None
    conversations: int = 100
    messages_per_conversation: int = 10
    dm_fraction: float = 0.4
    redeliver_fraction: float = 0.2
    unsigned_requests: int = 30
    malformed_requests: int = 30
    slack_ratelimit_probability: float = 0.03
    chaos: bool = True
    restart_postgres_at: float | None = None
    reply_timeout: float = 120.0
    start_spread_seconds: float = 2.0
    seed: int = 1


@dataclass
class Ledger:
    events_sent: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    redeliveries_sent: int = 0
    slack_retries: int = 0
    user_messages_expected: int = 0
    user_messages_stored: int = 0
    replies_posted: int = 0
    fallbacks_posted: int = 0
    duplicates: int = 0
    lost: int = 0
    ack_ms: list[float] = field(default_factory=list)
    reply_ms: list[float] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_by_tenth: list[float] = field(default_factory=list)  # RSS as each tenth of the expected replies was posted
    survived: bool = True
    llm_requests: int = 0
    wall_seconds: float = 0.0
    cpu_percent: float = 0.0
    lukas_log: Counter[str] = field(default_factory=Counter)
    driver_cpu_percent: float = 0.0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.survived

    def lines(self) -> list[str]:
        rejected = ", ".join(f"{count} {why}" for why, count in sorted(self.rejected.items())) or "none"
        return [
            f"events sent:              {self.events_sent} (of which redeliveries {self.redeliveries_sent}, "
            f"Slack-style retries after errors {self.slack_retries})",
            f"accepted (HTTP 200):      {self.accepted}",
            f"rejected:                 {rejected}",
            f"user messages expected:   {self.user_messages_expected}",
            f"user messages stored:     {self.user_messages_stored}",
            f"replies posted:           {self.replies_posted}",
            f"fallbacks posted:         {self.fallbacks_posted}",
            f"duplicates:               {self.duplicates}",
            f"lost:                     {self.lost}",
            f"ack latency:              p50 {percentile(self.ack_ms, 50):.1f} ms, "
            f"p99 {percentile(self.ack_ms, 99):.1f} ms",
            f"time to reply:            p50 {percentile(self.reply_ms, 50) / 1000:.2f} s, "
            f"p99 {percentile(self.reply_ms, 99) / 1000:.2f} s",
            f"LLM requests:             {self.llm_requests}",
            f"RSS of lukas:             start {self.rss_start_mb:.1f} MB, peak {self.rss_peak_mb:.1f} MB, "
            f"end {self.rss_end_mb:.1f} MB (growth {self.rss_end_mb - self.rss_start_mb:+.1f} MB)",
            "RSS by tenths of replies: " + " ".join(f"{mb:.1f}" for mb in self.rss_by_tenth) + " MB",
            f"CPU of lukas:             {self.cpu_percent:.0f} % of one core on average "
            f"(this load generator and the stand-ins: {self.driver_cpu_percent:.0f} %)",
            f"lukas survived:           {'yes' if self.survived else 'NO'}",
            "lukas's warnings/errors:  "
            + (", ".join(f"{n}x {what}" for what, n in self.lukas_log.most_common(12)) or "none"),
            f"wall time:                {self.wall_seconds:.1f} s",
            f"RESULT:                   {'OK' if self.ok else 'FAILED'}",
        ]


class SlackPlayer:
    """Delivers events the way Slack does: signed, retried on errors, sometimes redelivered anyway."""

    def __init__(self, http: aiohttp.ClientSession, url: str, ledger: Ledger, rng: random.Random, params: SoakParams):
        self.http, self.url, self.ledger, self.rng, self.params = http, url, ledger, rng, params
        self.background: list[asyncio.Task[None]] = []

    async def _post(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            async with self.http.post(
                self.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=3)
            ) as response:
                await response.read()
                return response.status
        except (TimeoutError, aiohttp.ClientError):
            return 0  # Slack treats a timeout like an error and retries

    async def deliver(self, event: dict, *, event_id: str | None = None) -> bool:
        payload = json.dumps(envelope(event, event_id=event_id)).encode()
        event_id = json.loads(payload)["event_id"]
        for retry in range(4):  # the first delivery and Slack's three retries (compressed in time)
            headers = sign(payload)
            if retry:
                headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"})
                self.ledger.slack_retries += 1
            started = time.perf_counter()
            status = await self._post(payload, headers)
            self.ledger.events_sent += 1
            if retry == 0:
                self.ledger.ack_ms.append((time.perf_counter() - started) * 1000)
            if status == 200:
                self.ledger.accepted += 1
                if self.rng.random() < self.params.redeliver_fraction:
                    self.background.append(asyncio.create_task(self._redeliver(payload)))
                return True
            self.ledger.rejected[f"HTTP {status} (retried)"] += 1
            await asyncio.sleep(min(2**retry, 4))
        return False

    async def _redeliver(self, payload: bytes) -> None:
        await asyncio.sleep(self.rng.uniform(0.05, 1.5))
        headers = sign(payload)
        headers.update({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
        status = await self._post(payload, headers)
        self.ledger.events_sent += 1
        self.ledger.redeliveries_sent += 1
        if status == 200:
            self.ledger.accepted += 1
        else:
            self.ledger.rejected[f"HTTP {status} (redelivery)"] += 1

    async def junk(self) -> None:
        """Unsigned, wrongly signed, stale and malformed requests: all must be refused or ignored, never crash."""
        for i in range(self.params.unsigned_requests):
            body = json.dumps(envelope(message_event(text=f"forged {i}"))).encode()
            headers = {"Content-Type": "application/json"} if i % 3 == 0 else sign(body, secret="not-the-secret")
            if i % 3 == 2:
                headers = sign(body, timestamp=int(time.time()) - 3600)
            status = await self._post(body, headers)
            self.ledger.events_sent += 1
            self.ledger.rejected[f"HTTP {status} (unsigned/stale)"] += 1
            await asyncio.sleep(0.01)
        shapes: list[bytes] = [
            b"{not json",
            b"[]",
            b'{"type": "event_callback"}',
            json.dumps({"type": "event_callback", "event": {"type": "message"}}).encode(),
            json.dumps(envelope({"type": "message", "channel": "D0JUNK", "text": 5})).encode(),
        ]
        for i in range(self.params.malformed_requests):
            body = shapes[i % len(shapes)]
            status = await self._post(body, sign(body))
            self.ledger.events_sent += 1
            self.ledger.rejected[f"HTTP {status} (malformed)"] += 1
            await asyncio.sleep(0.01)


class PostIndex:
    """Slack posts by (channel, thread), indexed as they arrive: rescanning every call for each waiting
    conversation made this load generator, not Lukas, the bottleneck on long runs."""

    def __init__(self, slack: SlackStandIn) -> None:
        self._slack = slack
        self._seen = 0
        self._posts: dict[tuple[str, str | None], list[Any]] = {}

    def posts(self, channel: str, thread_ts: str | None) -> list[Any]:
        calls = self._slack.calls
        for call in calls[self._seen :]:
            if call.method == "chat.postMessage" and call.ok:
                key = (call.params.get("channel"), call.params.get("thread_ts") or None)
                self._posts.setdefault(key, []).append(call)
        self._seen = len(calls)
        return self._posts.get((channel, thread_ts), [])

    async def wait_for(self, channel: str, thread_ts: str | None, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.posts(channel, thread_ts)) >= count:
                return True
            await asyncio.sleep(0.05)
        return False


async def _conversation(
    index: int, player: SlackPlayer, posts: PostIndex, ledger: Ledger, params: SoakParams, rng: random.Random
) -> tuple[str, str | None, int]:
    is_dm = index < params.conversations * params.dm_fraction
    channel = f"D{index:05d}" if is_dm else f"C{index % 7:05d}"
    user = f"U{index:05d}"
    thread_ts: str | None = None
    sent = 0
    await asyncio.sleep(rng.uniform(0, params.start_spread_seconds))  # people do not all type at the same instant
    for turn in range(params.messages_per_conversation):
        await asyncio.sleep(rng.uniform(0, 0.3))
        ts = new_ts()
        if is_dm:
            event = message_event(text=f"DM {index}.{turn}: how are the bees?", channel=channel, user=user, ts=ts)
        elif turn == 0:
            thread_ts = ts
            event = mention_event(text=f"thread {index}: tell me about honey", channel=channel, user=user, ts=ts)
        else:
            event = message_event(
                text=f"thread {index}.{turn}: and then?",
                channel=channel,
                user=user,
                ts=ts,
                thread_ts=thread_ts,
                channel_type="channel",
            )
        started = time.monotonic()
        if not await player.deliver(event):
            continue  # never accepted: Slack gave up; not a message Lukas owes an answer
        sent += 1
        if not is_dm and turn == 0:  # Slack also sends the plain message event for the same post
            twin = message_event(text=event["text"], channel=channel, user=user, ts=ts, channel_type="channel")
            await player.deliver(twin)
        if await posts.wait_for(channel, thread_ts, sent, params.reply_timeout):
            post = posts.posts(channel, thread_ts)[sent - 1]
            ledger.reply_ms.append((post.at - started) * 1000)
        else:
            break  # lost: accounted for at the end
    return channel, thread_ts, sent


def _log_summary(path: Path) -> Counter[str]:
    """WARNING and worse lines of lukas's log, by logger and the start of the message."""
    summary: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        parts = re.sub(r" \[(event|conversation)=[^\]]*\]", "", line).split(" ", 4)
        if len(parts) == 5 and parts[2] in ("WARNING", "ERROR", "CRITICAL"):
            summary[f"{parts[2]} {parts[3].rstrip(':')} {parts[4][:45]}"] += 1
    return summary


async def _restart_postgres(after: float) -> None:
    await asyncio.sleep(after)
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    print(f"[soak] restarting PostgreSQL {version} at t={after:.0f}s", flush=True)
    await asyncio.to_thread(
        subprocess.run,
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=False,
        capture_output=True,
    )
    print("[soak] PostgreSQL is back", flush=True)


async def _count_user_messages(database_url: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from bot.store.db import create_engine
    from bot.store.models import Message

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            users = await connection.scalar(select(func.count()).where(Message.sender == "user"))
            over_answered = await connection.scalar(
                select(func.count()).select_from(
                    select(Message.reply_to_id)
                    .where(Message.reply_to_id.is_not(None))
                    .group_by(Message.reply_to_id)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
        return int(users or 0), int(over_answered or 0)
    finally:
        await engine.dispose()


async def run_soak(params: SoakParams, *, workdir: Path, verbose: bool = True) -> Ledger:
    rng = random.Random(params.seed)
    ledger = Ledger()
    database_url = params.database_url or f"sqlite+aiosqlite:///{workdir / 'soak.db'}"
    slack, llm = SlackStandIn(), OpenAIStandIn(reply="Bees make honey from nectar, and I make friends! 🐻")
    if params.chaos:
        llm.chaos = Chaos(seed=params.seed, hang_seconds=6.0)
    slack.ratelimit_probability["chat.postMessage"] = params.slack_ratelimit_probability
    async with slack, llm:
        for i in range(params.conversations):
            slack.add_user(f"U{i:05d}", display_name=f"Person {i}")
        overrides = {
            "retry": {
                "chat": {
                    "wait_min_seconds": 0.2,
                    "wait_max_seconds": 1,
                    "jitter_seconds": 0.2,
                    "max_retry_after_seconds": 5,
                }
            },
            "llm": {"timeout_seconds": 3},
            # Each conversation is one person writing turn after turn: at 100 turns (--messages 10000) the
            # per-person limit would rightly answer "slow down" instead of the model (tests/guards cover that).
            "limits": {"per_person": None, "per_conversation": None},
        }
        async with (
            lukas_process(workdir, database_url=database_url, slack=slack, llm=llm, overrides=overrides) as lukas,
            aiohttp.ClientSession() as http,
        ):
            monitor = psutil.Process(lukas.process.pid)
            base = lukas.base_url
            ledger.rss_start_mb = monitor.memory_info().rss / 2**20
            cpu_started = monitor.cpu_times()
            driver_cpu_started = time.process_time()
            peak = ledger.rss_start_mb
            post_index = PostIndex(slack)
            player = SlackPlayer(http, f"{base}/slack/events", ledger, rng, params)
            started = time.monotonic()
            extra = [asyncio.create_task(player.junk())]
            if params.restart_postgres_at is not None:
                extra.append(asyncio.create_task(_restart_postgres(params.restart_postgres_at)))
            work = asyncio.gather(
                *(
                    _conversation(i, player, post_index, ledger, params, random.Random(rng.random()))
                    for i in range(params.conversations)
                )
            )
            expected = params.conversations * params.messages_per_conversation
            while not work.done():
                rss = monitor.memory_info().rss / 2**20
                peak = max(peak, rss)
                replies = len(slack.calls_to("chat.postMessage"))
                while len(ledger.rss_by_tenth) < 10 and replies >= expected * (len(ledger.rss_by_tenth) + 1) / 10:
                    ledger.rss_by_tenth.append(rss)
                if not lukas.alive():
                    ledger.survived = False
                    break
                await asyncio.sleep(0.25)
            results = await work
            await asyncio.gather(*extra, *player.background)
            await asyncio.sleep(2)  # let late redeliveries land, so a duplicate would show
            ledger.wall_seconds = time.monotonic() - started
            cpu = monitor.cpu_times()
            ledger.cpu_percent = (
                100 * (cpu.user + cpu.system - cpu_started.user - cpu_started.system) / (ledger.wall_seconds)
            )
            ledger.driver_cpu_percent = 100 * (time.process_time() - driver_cpu_started) / ledger.wall_seconds
            ledger.rss_end_mb = monitor.memory_info().rss / 2**20
            ledger.rss_peak_mb = max(peak, ledger.rss_end_mb)
            ledger.survived = ledger.survived and lukas.alive()
        ledger.llm_requests = len(llm.chat_requests)
        ledger.lukas_log = _log_summary(workdir / "lukas.log")
        for channel, thread_ts, sent in results:
            ledger.user_messages_expected += sent
            posts = post_index.posts(channel, thread_ts)
            ledger.duplicates += max(0, len(posts) - sent)
            ledger.lost += max(0, sent - len(posts))
            for post in posts:
                text = post.params.get("text", "")
                if any(marker in text for marker in FALLBACK_MARKERS):
                    ledger.fallbacks_posted += 1
                else:
                    ledger.replies_posted += 1
        stored, over_answered = await _count_user_messages(database_url)
        ledger.user_messages_stored = stored
        ledger.duplicates += over_answered
        ledger.lost += max(0, ledger.user_messages_expected - stored)
    if verbose:
        print("\n".join(ledger.lines()))
    return ledger


def soak_in_fresh_database(params: SoakParams, *, workdir: Path) -> Ledger:
    """Run on a throwaway database: a SQLite file in workdir, or a new database on the given PostgreSQL server."""
    with fresh_database(params.database_url, workdir) as url:
        return asyncio.run(run_soak(replace(params, database_url=url), workdir=workdir))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temp dir")
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--messages", type=int, default=1000, help="messages in all, spread over the conversations")
    parser.add_argument("--restart-postgres-at", type=float, default=None, help="seconds into the run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    params = SoakParams(
        database_url=args.database_url,
        conversations=args.conversations,
        messages_per_conversation=max(1, args.messages // args.conversations),
        restart_postgres_at=args.restart_postgres_at,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory() as tmp:
        ledger = soak_in_fresh_database(params, workdir=Path(tmp))
        if not ledger.ok:
            print(f"--- last lines of the lukas log ({tmp}/lukas.log) ---")
            print("\n".join((Path(tmp) / "lukas.log").read_text().splitlines()[-40:]))
    return 0 if ledger.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
