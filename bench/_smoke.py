"""Smoke mode for the benchmarks: every script under bench/ with tiny numbers, so none can rot unnoticed.

Each entry of SMOKES runs as its own process with a timeout and passes when it exits 0 and its output prints every
figure it is there to print (regexes on the figure lines). Timings are never judged: a shared CI machine cannot.
Entries that need PostgreSQL, Redis or py-spy are skipped, saying why, when those are not there.
tests/bench/test_smoke_table.py fails the suite when a benchmark under bench/ has no entry here.

    ./scripts/check-benchmarks                 # all of them (CI runs this)
    ./scripts/check-benchmarks burst soak      # only the entries whose command contains one of these words
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ENV, REDIS_ENV = "LUKAS_TEST_POSTGRES_URL", "LUKAS_TEST_REDIS_URL"
NUMBER = r"\d+(\.\d+)?"


@dataclass(frozen=True)
class Smoke:
    script: str  # a file under bench/
    args: tuple[str, ...] = ()  # "{postgres}" and "{redis}" stand for the servers' URLs
    figures: tuple[str, ...] = ()  # regexes: each must match somewhere in the output
    needs: tuple[str, ...] = ()  # "postgres", "redis", "py-spy"
    env: Mapping[str, str] = field(default_factory=dict)  # more environment, with the same placeholders
    timeout: float = 90.0

    @property
    def command(self) -> str:
        return " ".join([self.script, *self.args])


# The slowest first (each starts `lukas run` processes), so two at a time finish together.
SMOKES: tuple[Smoke, ...] = (
    Smoke(
        "failover.py",
        ("--questions", "8", "--rate", "4", "--latency", "0.2", "0.5", "--grace", "0.5", "--wait", "45"),
        (r"answered: 8 +lost: 0 +duplicates: 0", r"SIGKILL: the replica held \d+", r"SIGTERM: the replica held \d+"),
        needs=("postgres", "redis"),
        env={"REDIS_URL": "{redis}"},
    ),
    Smoke(
        "burst.py",
        ("--events", "12", "--latency", "0.2", "--replicas", "2", "--single-delivery", "--database-url", "{postgres}"),
        (r"2 lukas process\(es\), each event delivered to one", rf"last reply after {NUMBER} s \(12 replies\)"),
        needs=("postgres",),
    ),
    Smoke(
        "soak.py",
        ("--conversations", "5", "--messages", "15"),
        (r"lost: +0\n", r"duplicates: +0\n", rf"ack latency: +p50 {NUMBER} ms", r"RESULT: +OK"),
    ),
    Smoke(
        "burst.py",
        ("--events", "12", "--people", "3", "--rate", "40", "--shipped-limits", "--latency", "0.2"),
        (rf"from 3 people.*\n.*run 1: last reply after {NUMBER} s \(12 replies\).*server CPU {NUMBER} s",),
    ),
    Smoke(
        "burst.py",
        ("--events", "12", "--latency", "0.2", "--runs", "2"),
        (
            rf"run 1: last reply after {NUMBER} s \(12 replies\); ack p50 {NUMBER} p99 {NUMBER}",
            rf"median of 2: last reply {NUMBER} s; .* CPU {NUMBER} s \({NUMBER} ms a message\)",
        ),
    ),
    Smoke(
        "chat_ack_latency.py",
        ("--rate", "20", "--seconds", "1"),
        (rf"ack latency: n=20 p50={NUMBER} ms p99={NUMBER} ms", r"HTTP 200: 20/20; replies posted: 20"),
    ),
    Smoke("chat_concurrency.py", ("--conversations", "5"), (rf"all 5 replies in Slack after {NUMBER} s",)),
    Smoke("memory_at_rest.py", ("--starts", "1", "--settle", "0.5"), (rf"lukas run at rest: RSS {NUMBER} MB",)),
    Smoke(
        "stream_first_token.py",
        ("--replies", "3", "--chunk-delay", "0.01"),
        (
            rf"first visible text \(thread\): n=3 p50={NUMBER} ms",
            rf"first visible text \(dm\): n=3 p50={NUMBER} ms",
        ),
    ),
    Smoke(
        "memory_bench.py",
        ("--messages", "10"),
        (
            rf"memory on : answer's own work .* p50={NUMBER} ms",
            rf"memory adds to an answer: p50 [+-]{NUMBER} ms",
            r"largest prompt \d+ of \d+ tokens allowed, 0 over",
        ),
    ),
    Smoke(
        "chat_pipeline_overhead.py",
        ("--messages", "20"),
        (rf"per message .*: n=20 p50={NUMBER} ms", rf"CPU time per message .*: {NUMBER} ms"),
    ),
    Smoke("chat_pipeline_overhead.py", ("--messages", "10", "--limits"), (rf"n=10 p50={NUMBER} ms", r"limits True")),
    # A profiling tool rather than a benchmark: it samples another benchmark with py-spy (not a dependency of
    # Lukas; it needs ptrace), so it runs here only where py-spy is installed.
    Smoke(
        "where_time_goes.py",
        ("--messages", "10", "--", "bench/chat_pipeline_overhead.py", "--messages", "10"),
        (rf"\| \*\*all\*\* \| 100% \| \*\*{NUMBER}\*\* \|",),
        needs=("py-spy",),
    ),
    Smoke(
        "images_bench.py",
        ("--plans", "100", "--runs", "2", "--replicas", "2"),
        (
            rf"plan_for_date: n=100 mean={NUMBER}",
            rf"run_slot end to end .* p50={NUMBER} ms",
            r"racing for one slot: 1 ",
        ),
    ),
    Smoke(
        "sanitise_bench.py", (), (rf"2 KB reply +sanitise +p50 {NUMBER} ms", rf"hostile reply +render .* p50 {NUMBER}")
    ),
    Smoke(
        "intake_bench.py",
        ("--budget", "0.05"),
        (r"Slack message \(real shape\) +before \(any\) +\d", r"after, signed +\d"),
    ),
    Smoke("secrets_bench.py", (), (rf"2 KB reply, no secret +p50 {NUMBER} ms", rf"Slack token +p50 {NUMBER} ms")),
    Smoke(
        "retention_bench.py",
        ("--rows", "5000", "--batch", "1000"),
        (rf"erased 5,000 messages in {NUMBER} s", rf"answer units meanwhile: \d+, p50 {NUMBER} ms"),
    ),
    Smoke(
        "contracts_bench.py",
        ("--iterations", "30"),
        (rf"chat input, newest message scanned .* p50 +{NUMBER} ms", rf"history scanned: {NUMBER} ms"),
    ),
    Smoke("trim_bench.py", ("--runs", "20"), (rf"fit_to_budget: n=20 p50={NUMBER} ms",)),
)


def benchmark_scripts(folder: Path = ROOT / "bench") -> list[str]:
    """Every benchmark under bench/: the scripts, not the `_`-prefixed helpers."""
    return sorted(path.name for path in folder.glob("*.py") if not path.name.startswith("_"))


def _has_py_spy() -> bool:
    """Where bench/where_time_goes.py looks for it: on PATH or next to this Python."""
    return bool(shutil.which("py-spy")) or (Path(sys.executable).parent / "py-spy").exists()


def skip_reason(smoke: Smoke, env: Mapping[str, str]) -> str | None:
    """Why this entry cannot run here (None: it can)."""
    if "postgres" in smoke.needs and not env.get(POSTGRES_ENV):
        return f"needs PostgreSQL: set {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    if "redis" in smoke.needs and not env.get(REDIS_ENV):
        return f"needs Redis: set {REDIS_ENV} (e.g. redis://127.0.0.1:6379/15; its database is flushed)"
    if "py-spy" in smoke.needs and not _has_py_spy():
        return "a profiling tool that needs py-spy (pip install py-spy), which is not installed"
    return None


def _fill(text: str, env: Mapping[str, str]) -> str:
    return text.replace("{postgres}", env.get(POSTGRES_ENV, "")).replace("{redis}", env.get(REDIS_ENV, ""))


def missing_figures(smoke: Smoke, output: str) -> list[str]:
    """The figure patterns the output does not print."""
    return [pattern for pattern in smoke.figures if not re.search(pattern, output)]


@dataclass
class Outcome:
    smoke: Smoke
    status: str  # "ok", "FAIL" or "skip"
    seconds: float = 0.0
    why: str = ""
    output: str = ""


def run_one(smoke: Smoke, env: Mapping[str, str], *, folder: Path = ROOT / "bench") -> Outcome:
    """Run one entry: `folder`/script with the entry's arguments, in the repo root, within its timeout."""
    reason = skip_reason(smoke, env)
    if reason:
        return Outcome(smoke, "skip", why=reason)
    command = [sys.executable, str(folder / smoke.script), *(_fill(a, env) for a in smoke.args)]
    child_env = {**env, **{k: _fill(v, env) for k, v in smoke.env.items()}, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    # A session of its own, so a timeout ends the benchmark and every `lukas run` it started.
    process = subprocess.Popen(
        command, cwd=ROOT, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=smoke.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        text = output.decode(errors="replace")
        return Outcome(smoke, "FAIL", time.monotonic() - started, f"no exit after {smoke.timeout:.0f} s", text)
    text = output.decode(errors="replace")
    seconds = time.monotonic() - started
    if process.returncode != 0:
        return Outcome(smoke, "FAIL", seconds, f"exit {process.returncode}", text)
    missing = missing_figures(smoke, text)
    if missing:
        return Outcome(smoke, "FAIL", seconds, "figures not printed: " + ", ".join(map(repr, missing)), text)
    return Outcome(smoke, "ok", seconds, output=text)


def _print(outcome: Outcome) -> None:
    smoke = outcome.smoke
    timing = f" ({outcome.seconds:.1f} s)" if outcome.status != "skip" else ""
    print(f"{outcome.status:4}  {smoke.command}{timing}" + (f": {outcome.why}" if outcome.why else ""), flush=True)
    if outcome.status == "FAIL":
        print("      --- last lines of its output ---")
        print("\n".join("      " + line for line in outcome.output.splitlines()[-25:]), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="run only entries whose command contains one of these words")
    parser.add_argument("--jobs", type=int, default=2, help="benchmarks run at once (default 2: most time is waiting)")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    chosen = [s for s in SMOKES if not args.only or any(word in s.command for word in args.only)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, smoke, env) for smoke in chosen]
        outcomes = []
        for future in as_completed(futures):
            outcomes.append(future.result())
            _print(outcomes[-1])
    counts = {status: sum(o.status == status for o in outcomes) for status in ("ok", "FAIL", "skip")}
    print(
        f"benchmarks smoke: {counts['ok']} ok, {counts['FAIL']} failed, {counts['skip']} skipped "
        f"in {time.monotonic() - started:.0f} s ({args.jobs} at a time)"
    )
    return 1 if counts["FAIL"] or not outcomes else 0


if __name__ == "__main__":
    sys.exit(main())
