"""What /slack/events spends on a body before it answers, by size and adversarial shape: the checks before the fix
(the string-skipping regex of 93c8b6a, run on every body before the signature) and after (size, headers and
signature first; the linear depth scan only on signed bodies). CPU milliseconds on the event loop; prints numbers,
never fails on time.

    .venv/bin/python bench/intake_bench.py [--budget 20]

"Before" runs up to a size while one measurement stays under --budget seconds; beyond that it is extrapolated
from the last two measured sizes (marked ≈), since the old regex is quadratic and 1 MiB would take hours.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import re
import statistics
import time
from collections.abc import Callable

import _common  # noqa: F401  (puts the repo root on sys.path)

from bot.slack.intake_logic import MAX_BODY_BYTES, refusal

SECRET = "bench-signing-secret"
SIZES = {"1 KB": 1024, "10 KB": 10 * 1024, "40 KB": 40 * 1024, "100 KB": 100 * 1024, "1 MiB": MAX_BODY_BYTES}

# The check as it was (bot/slack/intake_logic.py at 93c8b6a), kept here as the baseline.
_OLD_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_OLD_BRACKET = re.compile(rb"[\[\]{}]")


def old_json_depth(raw: bytes) -> int:
    stripped = _OLD_STRING.sub(b"", raw) if b'"' in raw else raw
    depth = deepest = 0
    for bracket in _OLD_BRACKET.findall(stripped):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)
    return deepest


def _fill(head: bytes, unit: bytes, size: int, tail: bytes = b"") -> bytes:
    return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail


def _message(size: int) -> bytes:
    """A Slack message event whose text fills the size: what real traffic looks like."""
    event = {"type": "event_callback", "event": {"type": "message", "text": "", "user": "U1", "channel": "D1"}}
    room = size - len(json.dumps(event))
    event["event"]["text"] = ("bears like honey [and naps] " * (room // 28 + 1))[:room]
    return json.dumps(event).encode()


SHAPES: dict[str, Callable[[int], bytes]] = {
    'unterminated {"a":"\\"\\"…': lambda size: _fill(b'{"a":"', b'\\"', size),
    'quotes """…': lambda size: b'"' * size,
    'quoted brackets "["[…': lambda size: _fill(b"", b'"["[', size),
    "arrays 64 deep, repeated": lambda size: _fill(b"", b"[" * 64 + b"]" * 64, size),
    "one array nested size/2 deep": lambda size: b"[" * (size // 2) + b"]" * (size // 2),
    "backslashes \\\\\\…": lambda size: b"\\" * size,
    "Slack message (real shape)": _message,
}


def cpu_ms(check: Callable[[], object], *, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.thread_time()
        check()
        samples.append((time.thread_time() - started) * 1000)
    return statistics.median(samples)


def after(body: bytes, *, signed: bool) -> float:
    now = int(time.time())
    digest = hmac.new(SECRET.encode(), f"v0:{now}:".encode() + body, hashlib.sha256).hexdigest()
    signature = f"v0={digest}" if signed else "v0=" + "0" * 64

    def check() -> object:
        return refusal(
            body=body,
            content_type="application/json",
            timestamp=str(now),
            signature=signature,
            secret=SECRET,
            now=now,
        )

    return cpu_ms(check, runs=20)


def before_row(shape: Callable[[int], bytes], *, budget_ms: float) -> list[str]:
    """Measured while the next size is predicted to stay under the budget, extrapolated after that."""
    cells: list[str] = []
    measured: list[tuple[int, float]] = []
    for size in SIZES.values():
        predicted = _extrapolate(measured, size)
        if predicted is not None and predicted > budget_ms:
            cells.append("≈" + _fmt(predicted))
            continue
        body = shape(size)
        elapsed = cpu_ms(lambda body=body: old_json_depth(body), runs=1 if predicted and predicted > 50 else 5)
        measured.append((size, elapsed))
        cells.append(_fmt(elapsed))
    return cells


def _extrapolate(measured: list[tuple[int, float]], size: int) -> float | None:
    """From the growth between the last two measured sizes, between linear and quadratic (the regex's worst)."""
    if not measured:
        return None
    n2, t2 = measured[-1]
    exponent = 2.0
    if len(measured) > 1 and measured[-2][1] > 0 and t2 > 0:
        n1, t1 = measured[-2]
        exponent = min(max(math.log(t2 / t1) / math.log(n2 / n1), 1.0), 2.0)
    return t2 * (size / n2) ** exponent


def _fmt(ms: float) -> str:
    if ms >= 3_600_000:
        return f"{ms / 3_600_000:.1f} h"
    if ms >= 60_000:
        return f"{ms / 60_000:.1f} min"
    if ms >= 1000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=20, help="seconds one 'before' measurement may take")
    budget = parser.parse_args().budget
    header = f"{'shape':32s} {'check':16s}" + "".join(f"{name:>11s}" for name in SIZES)
    print(header)
    print("-" * len(header))
    for name, shape in SHAPES.items():
        rows = {
            "before (any)": before_row(shape, budget_ms=budget * 1000),
            "after, unsigned": [_fmt(after(shape(size), signed=False)) for size in SIZES.values()],
            "after, signed": [_fmt(after(shape(size), signed=True)) for size in SIZES.values()],
        }
        for check, cells in rows.items():
            print(f"{name if check.startswith('before') else '':32s} {check:16s}" + "".join(f"{c:>11s}" for c in cells))
    print("\nCPU time of the checks per body (median); ≈ extrapolated. Before, every body ran the regex on the")
    print("event loop before its signature was checked; after, an unsigned body costs one SHA-256 at most.")


if __name__ == "__main__":
    main()
