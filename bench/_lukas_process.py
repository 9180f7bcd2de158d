"""Run `lukas run` (HTTP mode) as a real subprocess against loopback stand-ins, for the load benchmarks.

A separate process keeps the load generator and the stand-ins from sharing Lukas's event loop (and its CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from tests.harness import SIGNING_SECRET, write_config
from tests.helpers import free_port, postgres_database, stop_process
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


@contextlib.contextmanager
def fresh_database(url: str | None, workdir: Path) -> Iterator[str]:
    """A throwaway database: a SQLite file in workdir, or a new database on the given PostgreSQL server.

    Benchmarks must not reuse one: event ids and timestamps restart with every run and would be deduplicated.
    """
    if url and url.startswith("postgres"):
        with postgres_database(url) as fresh:
            yield fresh
    else:
        yield url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"


@dataclass
class LukasProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def events_url(self) -> str:
        return f"{self.base_url}/slack/events"

    def rss_mb(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def alive(self) -> bool:
        return self.process.poll() is None


@contextlib.asynccontextmanager
async def lukas_process(
    workdir: Path,
    *,
    database_url: str,
    slack: SlackStandIn,
    llm: OpenAIStandIn,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[LukasProcess]:
    """`env`: more environment (e.g. REDIS_URL). A process the caller already ended is left alone."""
    config = write_config(
        workdir / "config.yml",
        llm_base_url=llm.base_url,
        overrides={"logging": {"level": "WARNING"}, **(overrides or {})},
    )
    port = free_port()
    more_env = env or {}
    env = {
        **os.environ,
        **more_env,
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": "sk-bench-000000000000",
        "DATABASE_URL": database_url,
        "LUKAS_CONFIG": str(config),
        "PORT": str(port),
    }
    env.pop("SLACK_APP_TOKEN", None)
    log_path = workdir / "lukas.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        running = LukasProcess(process, f"http://127.0.0.1:{port}", log_path)
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"{running.base_url}/healthz") as response:
                            if response.status == 200:
                                break
                    if not running.alive():
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError(f"lukas did not start; see {log_path}")
            if not running.alive():
                raise RuntimeError(f"lukas exited at start: {log_path.read_text()[-2000:]}")
            # The load generator's own full garbage collections (over the stand-ins' and the libraries' objects)
            # paused it for 50-150 ms mid-run, which showed up as Lukas's ack latency: keep them out of the figures.
            gc.collect()
            gc.freeze()
            yield running
        finally:
            stop_process(process)
