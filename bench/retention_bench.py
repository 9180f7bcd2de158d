"""Retention on a big table: 100k stored messages past retention.days, erased in batches while "answers" (a short
unit of work on the same store, every 10 ms) keep running. Prints the erase time and how long those answer units
waited. Never fails on time.

    .venv/bin/python bench/retention_bench.py [--rows 100000] [--batch 1000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.chat.privacy import erase_expired
from bot.store import migrate
from bot.store.db import create_engine
from bot.store.models import Conversation, Message
from bot.store.units import UnitRunner


async def seed(url: str, rows: int) -> None:
    engine = create_engine(url)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=120)
    async with engine.begin() as connection:
        conversation = await connection.scalar(
            insert(Conversation).values(channel_id="D0DM", kind="dm").returning(Conversation.id)
        )
        chunk = [
            {"conversation_id": conversation, "channel_id": "D0DM", "sender": "user", "user_id": "U0ANNA",
             "content": "an old message about honey and bees " * 3, "token_count": 20, "created_at": old}
            for _ in range(5000)
        ]  # fmt: skip
        for _ in range(rows // len(chunk)):
            await connection.execute(insert(Message), chunk)
    await engine.dispose()


async def run(url: str, rows: int, batch: int) -> None:
    await asyncio.to_thread(migrate.upgrade, url)
    started = time.perf_counter()
    await seed(url, rows)
    print(f"seeded {rows:,} messages in {time.perf_counter() - started:.1f} s")
    engine = create_engine(url)
    runner = UnitRunner(engine)
    waits: list[float] = []
    done = asyncio.Event()

    async def answers() -> None:
        while not done.is_set():
            began = time.perf_counter()
            await runner.run(lambda s: s.scalar(select(Message.id).where(Message.id == 1)))
            waits.append((time.perf_counter() - began) * 1000)
            await asyncio.sleep(0.01)

    async def run_db(work):  # type: ignore[no-untyped-def]
        return await runner.run(work)

    probe = asyncio.create_task(answers())
    began = time.perf_counter()
    erased = await erase_expired(run_db, days=90, batch_size=batch)
    seconds = time.perf_counter() - began
    done.set()
    await probe
    runner.close()
    await engine.dispose()
    waits.sort()
    print(f"erased {erased:,} messages in {seconds:.2f} s ({erased / seconds:,.0f}/s, batches of {batch})")
    print(
        f"answer units meanwhile: {len(waits)}, p50 {statistics.median(waits):.1f} ms, "
        f"p99 {waits[int(len(waits) * 0.99)]:.1f} ms, max {waits[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.database_url:
        from tests.helpers import postgres_database

        with postgres_database(args.database_url) as url:
            asyncio.run(run(url, args.rows, args.batch))
        return
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(f"sqlite+aiosqlite:///{Path(folder) / 'lukas.db'}", args.rows, args.batch))


if __name__ == "__main__":
    main()
