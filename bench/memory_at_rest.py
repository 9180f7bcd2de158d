"""Memory at rest (issue 17): the resident memory of `lukas run` once it has started and is idle.

`lukas run` runs as its own process against the loopback stand-ins (as in the other benchmarks), on a fresh SQLite
database, so the start includes the migration. RSS is read a few seconds after /healthz answers; the figure is the
median of --starts fresh processes. Target: <= 150 MB.

`--imports` also prints what the running process has imported by top-level package, and (in a fresh interpreter)
how much RSS each of the big libraries adds when imported in turn: the way to see where the megabytes go.

    python bench/memory_at_rest.py
    python bench/memory_at_rest.py --starts 5 --imports
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import _common  # puts the repo root on sys.path
import psutil

from bench._lukas_process import fresh_database, lukas_process
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

TARGET_MB = 150.0
# Imported one after the other in a fresh interpreter by --imports: each line is what that import adds.
IMPORT_STEPS = (
    "sqlalchemy.ext.asyncio",
    "aiohttp",
    "slack_bolt.async_app",
    "pydantic",
    "tiktoken",
    "openai",
    "any_llm",
    "anthropic",
    "alembic.command",
    "apscheduler.schedulers.asyncio",
    "prometheus_client",
    "detect_secrets",
    "bot.runtime",
)


# Put on PYTHONPATH of the measured process by --imports: SIGUSR1 makes it write what it has loaded to a file.
_PROBE = """
import json, os, signal, sys

def _dump(*_):
    registry, lukas = sys.modules.get("tiktoken.registry"), sys.modules.get("bot.tokens.counting")
    encodings = [*getattr(registry, "ENCODINGS", {}), *(f"{n} (lean)" for n in getattr(lukas, "_lean", {}))]
    with open(os.environ["LUKAS_MEMORY_PROBE"], "w") as out:
        json.dump({"modules": sorted(sys.modules), "encodings": sorted(encodings)}, out)

signal.signal(signal.SIGUSR1, _dump)
"""


@dataclass
class AtRest:
    rss_mb: float
    uss_mb: float
    loaded: dict[str, list[str]] | None  # {"modules": [...], "encodings": [...]} with --imports


async def one_start(settle: float, *, probe: bool) -> AtRest:
    """One fresh `lukas run`, `settle` seconds after it answered /healthz."""
    with tempfile.TemporaryDirectory() as tmp, fresh_database(None, Path(tmp)) as url:
        env = {}
        if probe:
            (Path(tmp) / "sitecustomize.py").write_text(_PROBE)
            env = {"PYTHONPATH": tmp, "LUKAS_MEMORY_PROBE": str(Path(tmp) / "loaded.json")}
        slack, llm = SlackStandIn(), OpenAIStandIn()
        async with slack, llm, lukas_process(Path(tmp), database_url=url, slack=slack, llm=llm, env=env) as lukas:
            await asyncio.sleep(settle)
            memory = psutil.Process(lukas.process.pid).memory_full_info()
            loaded = None
            if probe:
                lukas.process.send_signal(signal.SIGUSR1)
                for _ in range(50):
                    await asyncio.sleep(0.1)
                    with contextlib.suppress(FileNotFoundError, ValueError):
                        loaded = json.loads((Path(tmp) / "loaded.json").read_text())
                        break
            return AtRest(memory.rss / 2**20, memory.uss / 2**20, loaded)


_BREAKDOWN = """
import importlib, json, sys, psutil
process = psutil.Process()
steps, before = [], process.memory_info().rss
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        steps.append((name, None, str(exc)))
        continue
    now = process.memory_info().rss
    steps.append((name, (now - before) / 2**20, ""))
    before = now
from bot.tokens.counting import lean_encoding
lean_encoding("o200k_base")  # the shipped config's chat model counts with it; tiktoken's Rust tables, mostly
now = process.memory_info().rss
steps.append(("tokenizer o200k_base (lean)", (now - before) / 2**20, ""))
before = now
print(json.dumps({"start": 0, "steps": steps, "total": before / 2**20}))
"""


def import_breakdown() -> None:
    """RSS each library adds, imported in IMPORT_STEPS order in a fresh interpreter (shared ones count once), then
    what the tokenizer adds once loaded."""
    out = subprocess.run(
        [sys.executable, "-c", _BREAKDOWN, *IMPORT_STEPS], capture_output=True, text=True, check=True, cwd=_common.ROOT
    )
    result = json.loads(out.stdout)
    print("RSS added by each import, in this order, then by the tokenizer (a fresh interpreter):")
    for name, added, error in result["steps"]:
        print(f"  {name:34} " + (f"{added:+7.1f} MB" if added is not None else f"not installed ({error})"))
    print(f"  {'total':34} {result['total']:7.1f} MB")


def running_modules(loaded: dict[str, list[str]] | None) -> None:
    """What the running `lukas run` holds at rest: tokenizer encodings and modules by top-level package."""
    if loaded is None:
        print("(the running process did not answer the probe)")
        return
    counts = collections.Counter(name.split(".")[0] for name in loaded["modules"])
    print(f"tiktoken encodings loaded: {', '.join(loaded['encodings']) or 'none'}")
    print(f"modules at rest: {len(loaded['modules'])}; by top-level package (modules):")
    print(
        textwrap.fill(
            " ".join(f"{k}:{v}" for k, v in counts.most_common(45)),
            width=118,
            initial_indent="  ",
            subsequent_indent="  ",
        )
    )


async def main(args: argparse.Namespace) -> None:
    results = [await one_start(args.settle, probe=args.imports and i == 0) for i in range(args.starts)]
    for i, result in enumerate(results, 1):
        print(f"  start {i}: RSS {result.rss_mb:.1f} MB (USS {result.uss_mb:.1f} MB)")
    rss = statistics.median(r.rss_mb for r in results)
    uss = statistics.median(r.uss_mb for r in results)
    verdict = "within" if rss <= TARGET_MB else "over"
    print(
        f"lukas run at rest: RSS {rss:.1f} MB, USS {uss:.1f} MB (median of {args.starts}; "
        f"{verdict} the {TARGET_MB:.0f} MB target)"
    )
    if args.imports:
        running_modules(results[0].loaded)
        import_breakdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=3, help="fresh processes to measure (the median is printed)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait after /healthz before reading")
    parser.add_argument("--imports", action="store_true", help="also print where the memory goes, by import")
    asyncio.run(main(parser.parse_args()))
