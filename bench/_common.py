"""Shared bits for the benchmarks: run from the repo root, e.g. `python bench/chat_ack_latency.py`."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(name: str, values_ms: list[float]) -> str:
    return (
        f"{name}: n={len(values_ms)} p50={percentile(values_ms, 50):.2f} ms p99={percentile(values_ms, 99):.2f} ms "
        f"mean={statistics.fmean(values_ms):.2f} ms max={max(values_ms):.2f} ms"
    )
