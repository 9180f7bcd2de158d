"""Where a message's CPU goes: samples a benchmark with py-spy (every thread, idle time left out) and sums the
samples by pipeline stage and by library, as tables in percent and in CPU milliseconds per message.

    pip install py-spy        # a profiler, not a dependency of Lukas; it needs ptrace (root, or a container's
                              # SYS_PTRACE capability)
    .venv/bin/python bench/where_time_goes.py --messages 300 -- bench/chat_pipeline_overhead.py --messages 300
    .venv/bin/python bench/where_time_goes.py --messages 150 --subprocesses -- bench/burst.py --events 150

`--messages`: how many messages the sampled run handled (to turn samples into milliseconds per message). With
`--subprocesses`, only the `lukas run` processes are counted (not the load generator or the stand-ins).
A stage is the innermost pipeline function on a sample's stack; a library is the innermost frame's package.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# (stage, function names that mark it), innermost match wins; order only breaks ties within one frame.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("intake: HTTP, signature, parse", ("_handle_events", "handle_events", "check_request", "verify")),
    ("accept: classify + store + judge limits", ("accept_event", "accept_messages", "_write_accepts")),
    ("answer: load history", ("load_claimed", "participants")),
    ("answer: build + check prompt", ("build_prompt", "prepare", "answer_window", "select_window")),
    ("answer: model call (client side)", ("complete", "_complete_once", "_call_provider")),
    ("answer: output checks + make safe", ("_judge", "make_safe", "check_reply")),
    ("answer: mark posting", ("mark_posting", "_mark_posting")),
    ("answer: post to Slack", ("post_reply", "_post_whole", "open_stream", "deliver")),
    ("answer: thinking status", ("show_thinking", "set_status", "clear")),
    ("answer: record reply + ledger", ("record_reply", "_record")),
    ("memory: summary check + refresh", ("_refresh", "refresh", "load_state", "nudge", "_run")),
    ("leases: heartbeat + sweep", ("renew_once", "renew", "sweep", "_sweep", "heartbeat")),
    ("guards: budget + gates", ("over_budget", "channel_gate", "judge")),
    ("answer: other", ("_answer_claimed", "_answer", "answer")),
]
LIBRARIES = [
    ("sqlalchemy", "SQLAlchemy"),
    ("sqlite3", "sqlite3 driver"),
    ("psycopg", "psycopg"),
    ("aiohttp", "aiohttp"),
    ("slack_bolt", "slack-bolt"),
    ("slack_sdk", "slack-sdk"),
    ("openai", "openai SDK"),
    ("httpx", "httpx"),
    ("httpcore", "httpx"),
    ("any_llm", "any-llm"),
    ("tiktoken", "tiktoken"),
    ("pydantic", "pydantic"),
    ("logging", "logging"),
    ("json", "json"),
    ("asyncio", "asyncio (event loop, threads)"),
    ("threading", "asyncio (event loop, threads)"),
    ("queue", "asyncio (event loop, threads)"),
    ("concurrent", "asyncio (event loop, threads)"),
    ("tenacity", "tenacity"),
    ("/bot/", "Lukas's own code"),
]
# A thread waiting (for work, the database, the network) is not spending CPU, whatever py-spy saw on its stack.
WAITING = ("select", "wait", "_worker", "get", "sleep", "acquire", "poll", "_wait_for_tstate_lock", "accept")
FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frames_of(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        match = FRAME.match(frame.strip())
        if match:
            out.append((match["function"], match["file"]))
    return out


def is_waiting(frames: list[tuple[str, str]]) -> bool:
    function, file = frames[-1] if frames else ("", "")
    return function.rpartition(".")[2] in WAITING and ("/bot/" not in file)


def is_start_up(stack: str) -> bool:
    return "importlib._bootstrap" in stack or "(bot/startup" in stack or "migrate" in stack


def stage_of(frames: list[tuple[str, str]]) -> str:
    for function, file in reversed(frames):
        if "/bot/" not in file and not file.startswith("bot/"):
            continue
        for stage, names in STAGES:
            if function in names:
                return stage
    return "outside the pipeline (loop, start-up, other)"


def library_of(frames: list[tuple[str, str]]) -> str:
    if not frames:
        return "?"
    file = frames[-1][1]
    for needle, name in LIBRARIES:
        if needle in file:
            return name
    return "other"


def table(title: str, counts: collections.Counter[str], *, total: int, ms_per_sample: float, messages: int) -> str:
    lines = [f"| {title} | share | CPU ms per message |", "|---|---:|---:|"]
    for name, count in counts.most_common():
        lines.append(f"| {name} | {100 * count / total:.1f}% | {count * ms_per_sample / messages:.2f} |")
    lines.append(f"| **all** | 100% | **{total * ms_per_sample / messages:.2f}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, required=True, help="messages the sampled run handled")
    parser.add_argument("--rate", type=int, default=500, help="samples per second")
    parser.add_argument("--subprocesses", action="store_true", help="count only the `lukas run` processes")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the benchmark and its arguments")
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        record = [spy, "record", "--format", "raw", "--rate", str(args.rate), "--threads", "-o", str(raw)]
        if args.subprocesses:
            record.append("--subprocesses")
        subprocess.run([*record, "--", sys.executable, *command], check=True)
        stages: collections.Counter[str] = collections.Counter()
        libraries: collections.Counter[str] = collections.Counter()
        skipped = 0  # start-up: imports and migrations, not a message's cost
        for line in raw.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            if args.subprocesses and "-m bot run" not in stack.split(";")[1 if ";" in stack else 0]:
                continue
            frames = frames_of(stack)
            if is_waiting(frames):
                continue
            if is_start_up(stack):
                skipped += int(count_text)
                continue
            stages[stage_of(frames)] += int(count_text)
            libraries[library_of(frames)] += int(count_text)
    total = sum(stages.values()) or 1
    ms_per_sample = 1000 / args.rate
    print(
        f"{total} samples at {args.rate}/s over {args.messages} messages ({' '.join(command)}); "
        f"{skipped} start-up samples (imports, migrations) and waiting threads left out\n"
    )
    print(table("stage", stages, total=total, ms_per_sample=ms_per_sample, messages=args.messages), "\n")
    print(
        table("library (innermost frame)", libraries, total=total, ms_per_sample=ms_per_sample, messages=args.messages)
    )


if __name__ == "__main__":
    main()
