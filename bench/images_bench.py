"""Weekly-image overhead: planning a date, and a whole run (claim, plan, check, generate, keep, post, record)
against the loopback stand-ins on SQLite, plus N replicas racing for one slot.

Run: python bench/images_bench.py [--plans N] [--runs N] [--replicas N]. Prints numbers; asserts nothing but
"one image per slot" (the point of the slot claim).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import report  # noqa: E402
from bot.config.live import LiveConfig  # noqa: E402
from bot.config.loader import load_config  # noqa: E402
from bot.images.client import ImageClient  # noqa: E402
from bot.images.job import WeeklyImageJob  # noqa: E402
from bot.images.themes_logic import plan_for_date  # noqa: E402
from bot.slack.client import build_web_client  # noqa: E402
from bot.store.db import create_engine, session_factory  # noqa: E402
from bot.store.models import Base  # noqa: E402
from tests.standins.openai_api import OpenAIStandIn  # noqa: E402
from tests.standins.slack_api import SlackStandIn  # noqa: E402

SLOT = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def bench_plans(count: int) -> None:
    images = load_config(ROOT / "config.yml", env={}).images
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n % 730) for n in range(count)]
    started = time.perf_counter()
    previous = None
    for day in days:
        previous = plan_for_date(day=day, config=images, previous_theme=previous).theme
    elapsed = time.perf_counter() - started
    print(f"plan_for_date: n={count} mean={elapsed / count * 1e6:.1f} µs per date")


async def bench_runs(runs: int, replicas: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="lukas-images-bench-"))
    config = load_config(ROOT / "config.yml", env={})
    images = config.images.model_copy(update={"channels": ["C0BENCH"], "monthly_budget_usd": 1000.0})
    live = LiveConfig(config.model_copy(update={"images": images}), path=folder / "config.yml")
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    now = {"t": SLOT}
    async with OpenAIStandIn() as image_api, SlackStandIn() as slack_api:
        client = ImageClient(api_key="sk-bench", base_url=image_api.base_url)

        def job() -> WeeklyImageJob:
            return WeeklyImageJob(
                config=live,
                sessions=session_factory(engine),
                slack=build_web_client(token="xoxb-bench", api_url=slack_api.api_url),
                image_client=client,
                clock=lambda: now["t"],
            )

        single = job()
        timings = []
        for week in range(runs):
            slot = SLOT + dt.timedelta(weeks=week)
            now["t"] = slot
            started = time.perf_counter()
            row = await single.run_slot(slot)
            timings.append((time.perf_counter() - started) * 1000)
            assert row.status == "succeeded", row.error
        print(report("run_slot end to end (stand-ins, SQLite)", timings))

        racers = [job() for _ in range(replicas)]
        slot = SLOT + dt.timedelta(weeks=runs)
        now["t"] = slot
        before = len(image_api.image_requests)
        started = time.perf_counter()
        await asyncio.gather(*(racer.run_slot(slot) for racer in racers))
        elapsed = (time.perf_counter() - started) * 1000
        made = len(image_api.image_requests) - before
        print(f"{replicas} replicas racing for one slot: {made} image request(s), {elapsed:.1f} ms for all")
        await client.aclose()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--replicas", type=int, default=8)
    args = parser.parse_args()
    bench_plans(args.plans)
    asyncio.run(bench_runs(args.runs, args.replicas))


if __name__ == "__main__":
    main()
