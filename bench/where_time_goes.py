"""Where a message's CPU goes: samples a benchmark with py-spy (every thread; waiting threads, start-up and imports
left out) and sums the samples by pipeline stage and by layer, as tables of CPU milliseconds per message.

    pip install py-spy        # a profiler, not a dependency of Lukas; it needs ptrace (root, or SYS_PTRACE)
    # Lukas's own pipeline, in-process (model and Slack instant):
    .venv/bin/python bench/where_time_goes.py --messages 1000 -- bench/chat_pipeline_overhead.py --messages 1000
    # the whole `lukas run` process under load: attach to it once it is warm, for a fixed time
    .venv/bin/python bench/where_time_goes.py --lukas --after 9 --duration 8 --messages 200 -- \\
        bench/burst.py --people 25 --events 400 --rate 25 --shipped-limits

`--messages`: how many messages the sampled part handled (with --lukas: rate x duration), to turn samples into
milliseconds per message. A stage is the innermost pipeline function on a sample's stack; a layer is the first of
the libraries (or Lukas's packages) found on it. py-spy's sampling adds its own overhead: compare shares and
before/after figures taken the same way, not absolute milliseconds with an unprofiled run.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (stage, function names that mark it); the innermost frame naming one wins.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("accept: classify + store + judge limits", ("accept_event", "accept_messages", "_write_accepts")),
    ("answer: load history", ("load_claimed", "participants")),
    ("answer: build + check prompt", ("build_prompt", "prepare", "answer_window", "select_window")),
    ("answer: output checks + make safe", ("_judge", "make_safe", "check_reply")),
    ("answer: mark posting", ("mark_posting", "_mark_posting")),
    ("answer: post to Slack", ("post_reply", "_post_whole", "open_stream", "deliver")),
    ("answer: thinking status", ("show_thinking", "_set", "clear")),
    ("answer: record reply + ledger", ("record_reply", "_record")),
    ("answer: model call", ("complete", "_ask", "attempt")),
    ("memory: summary check + refresh", ("after_reply", "_refresh", "refresh", "load_state", "save_summary", "nudge")),
    ("leases: heartbeat + sweep", ("renew_once", "renew", "sweep", "_sweep", "beat")),
    ("guards: budget + gates", ("over_budget", "channel_gate", "judge")),
    ("answer: other", ("_answer_claimed", "_answer", "answer")),
]
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("HTTP intake (aiohttp server, Bolt)", ("slack_bolt/", "aiohttp/web_", "bot/slack/server", "bot/slack/listeners")),
    ("model call (any-llm, openai SDK, HTTP client)", ("any_llm/", "openai/", "bot/llm/")),
    ("Slack Web API calls (slack_sdk)", ("slack_sdk/", "bot/slack/")),
    ("database (SQLAlchemy, drivers, units)", ("bot/store/", "sqlalchemy/", "psycopg", "sqlite3")),
    ("chat pipeline (Lukas's own code)", ("bot/chat/", "bot/contracts/", "bot/tokens/")),
    ("logging", ("logging/",)),
]
# A thread blocked on a lock, a queue, the network or a timer spends no CPU, whatever py-spy saw on its stack.
WAITING = {"select", "wait", "_worker", "get", "sleep", "acquire", "poll", "_wait_for_tstate_lock", "accept"}
WAITING_FRAMES = ("_connection_worker_thread (aiosqlite/core.py:59)",)  # aiosqlite's idle thread, in queue.get
START_UP = ("importlib._bootstrap", "(bot/startup", "migrate", "settle_after_start", "lean_encoding")
FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frames_of(stack: str) -> list[tuple[str, str]]:
    return [(m["function"], m["file"]) for frame in stack.split(";") if (m := FRAME.match(frame.strip()))]


def waiting(stack: str, frames: list[tuple[str, str]]) -> bool:
    if not frames or stack.endswith(WAITING_FRAMES):
        return True
    function, file = frames[-1]
    return function.rpartition(".")[2] in WAITING and "bot/" not in file


def stage_of(frames: list[tuple[str, str]]) -> str:
    for function, file in reversed(frames):
        if file.endswith("bot/store/units.py"):  # below any repository function: the hop between threads itself
            return "database: handing units between threads"
        if file.startswith("bot/") or "/bot/" in file:
            for stage, names in STAGES:
                if function.rpartition(".")[2] in names:
                    return stage
    return "outside the pipeline (event loop, HTTP, timers)"


def layer_of(stack: str) -> str:
    for layer, needles in LAYERS:
        if any(needle in stack for needle in needles):
            return layer
    return "other (event loop, sockets, json)"


def table(title: str, counts: collections.Counter[str], *, ms_per_sample: float, messages: int) -> str:
    total = sum(counts.values()) or 1
    lines = [f"| {title} | share | CPU ms per message |", "|---|---:|---:|"]
    for name, count in counts.most_common():
        lines.append(f"| {name} | {100 * count / total:.1f}% | {count * ms_per_sample / messages:.2f} |")
    lines.append(f"| **all** | 100% | **{total * ms_per_sample / messages:.2f}** |")
    return "\n".join(lines)


def record(spy: str, command: list[str], raw: Path, *, rate: int, lukas: bool, after: float, duration: float) -> None:
    base = [spy, "record", "--format", "raw", "--rate", str(rate), "--threads", "-o", str(raw)]
    if not lukas:
        subprocess.run([*base, "--", sys.executable, *command], check=True)
        return
    bench = subprocess.Popen([sys.executable, *command])
    try:
        pid = None
        for _ in range(300):  # the benchmark starts `lukas run` as its child once its stand-ins are up
            found = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(bench.pid)], capture_output=True, text=True)
            pid = next((line.split()[0] for line in found.stdout.splitlines() if "bot run" in line), None)
            if pid:
                break
            time.sleep(0.1)
        if pid is None:
            raise SystemExit("the benchmark started no `lukas run` process")
        time.sleep(after)
        subprocess.run([*base, "--pid", pid, "--duration", str(int(duration))], check=True)
    finally:
        bench.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, required=True, help="messages the sampled part handled")
    parser.add_argument("--rate", type=int, default=500, help="samples per second")
    parser.add_argument("--lukas", action="store_true", help="sample the benchmark's `lukas run` child only")
    parser.add_argument("--after", type=float, default=9.0, help="with --lukas: seconds after it appears")
    parser.add_argument("--duration", type=float, default=8.0, help="with --lukas: seconds to sample")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the benchmark and its arguments")
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    stages: collections.Counter[str] = collections.Counter()
    layers: collections.Counter[str] = collections.Counter()
    left_out = 0
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        record(spy, command, raw, rate=args.rate, lukas=args.lukas, after=args.after, duration=args.duration)
        for line in raw.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            frames = frames_of(stack)
            if waiting(stack, frames) or any(marker in stack for marker in START_UP):
                left_out += int(count_text)
                continue
            stages[stage_of(frames)] += int(count_text)
            layers[layer_of(stack)] += int(count_text)
    ms_per_sample = 1000 / args.rate
    print(
        f"{sum(stages.values())} samples at {args.rate}/s over {args.messages} messages ({' '.join(command)}); "
        f"{left_out} left out (waiting threads, start-up, imports)\n"
    )
    print(table("stage", stages, ms_per_sample=ms_per_sample, messages=args.messages), "\n")
    print(table("layer", layers, ms_per_sample=ms_per_sample, messages=args.messages))


if __name__ == "__main__":
    main()
