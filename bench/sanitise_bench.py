"""How long the output sanitiser takes on a 2 KB reply (it runs on every reply, three times on its way out), plain
and hostile, and the whole rendering for markdown_text and for a caption (mrkdwn). Prints numbers; never fails on
time.

    .venv/bin/python bench/sanitise_bench.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bot.slack.format_logic import render
from bot.slack.sanitise_logic import sanitise_outgoing

PEOPLE = frozenset({"U0ANNA", "U0BEN"})
PROSE = (
    "Bears love honey, <@U0ANNA>! See [the hive guide](https://bees.example/hive?a=1&b=2) and `make honey` "
    "before 3 < 4 o'clock.\n\n- clover\n- heather\n\n```python\nif jars > 2:\n    eat(jars)\n```\n"
)
HOSTILE = "Hi team <<<<!a>!b>!c>!channel> [the docs [v2]](<https://evil.example/login>) _@here_ <@U0EVE|eve> "


def two_kb(piece: str) -> str:
    return (piece * (2048 // len(piece) + 1))[:2048]


def measure(work: Callable[[], object], runs: int = 1000) -> tuple[float, float]:
    for _ in range(50):
        work()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def steps(text: str) -> dict[str, Callable[[], object]]:
    return {
        "sanitise": lambda: sanitise_outgoing(text, allowed_user_ids=PEOPLE),
        "render markdown_text": lambda: render(text, into="markdown_text", allowed_user_ids=PEOPLE),
        "render caption (mrkdwn)": lambda: render(text, into="initial_comment"),
    }


def main() -> None:
    for name, text in {"2 KB reply": two_kb(PROSE), "2 KB hostile reply": two_kb(HOSTILE)}.items():
        for step, work in steps(text).items():
            p50, p99 = measure(work)
            print(f"{name:20s} {step:24s} p50 {p50:.3f} ms  p99 {p99:.3f} ms")


if __name__ == "__main__":
    main()
