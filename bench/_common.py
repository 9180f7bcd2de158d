"""Shared bits for the benchmarks: run from the repo root, e.g. `python bench/chat_ack_latency.py`."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.contracts.metrics import percentile as nearest_rank  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (the contract metrics' own), NaN for no values."""
    value = nearest_rank(sorted(values), pct / 100)
    return float("nan") if value is None else value


def report(name: str, values_ms: list[float]) -> str:
    return (
        f"{name}: n={len(values_ms)} p50={percentile(values_ms, 50):.2f} ms p99={percentile(values_ms, 99):.2f} ms "
        f"mean={statistics.fmean(values_ms):.2f} ms max={max(values_ms):.2f} ms"
    )
