"""Contract and breaker metrics as JSON (saved by the running bot) and back to text for `lukas stats`. Pure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from bot.contracts import ContractMetricsSnapshot, ContractStats, StageStats, render_metrics

FORMAT = 1


@dataclass(frozen=True)
class SavedStats:
    instance_id: str
    version: str
    started_at: dt.datetime
    taken_at: dt.datetime
    contracts: ContractMetricsSnapshot | None  # None: saved by an incompatible version
    breakers: dict[str, str]


def encode(*, contracts: ContractMetricsSnapshot, breakers: dict[str, str]) -> str:
    return json.dumps(
        {"format": FORMAT, "contracts": dataclasses.asdict(contracts), "breakers": dict(breakers)}, sort_keys=True
    )


def decode_contracts(raw: Any) -> ContractMetricsSnapshot | None:
    try:
        return ContractMetricsSnapshot(
            contracts=[ContractStats(**item) for item in raw["contracts"]],
            stages=[StageStats(**item) for item in raw["stages"]],
            checks=int(raw["checks"]),
            violation_rate=raw["violation_rate"],
            auto_fix_success_rate=raw["auto_fix_success_rate"],
        )
    except (KeyError, TypeError, ValueError):
        return None


def decode(
    payload: str, *, instance_id: str, version: str, started_at: dt.datetime, taken_at: dt.datetime
) -> SavedStats:
    try:
        raw = json.loads(payload)
    except ValueError:
        raw = {}
    raw = raw if isinstance(raw, dict) else {}
    breakers = raw.get("breakers")
    return SavedStats(
        instance_id=instance_id,
        version=version,
        started_at=started_at,
        taken_at=taken_at,
        contracts=decode_contracts(raw.get("contracts")),
        breakers={str(k): str(v) for k, v in breakers.items()} if isinstance(breakers, dict) else {},
    )


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def breaker_lines(breakers: dict[str, str]) -> list[str]:
    if not breakers:
        return ["model breakers: none yet (no model called since the start)"]
    return ["model breakers:"] + [f"  {key}: {state}" for key, state in sorted(breakers.items())]


def render(saved: list[SavedStats], *, now: dt.datetime, stale_after: dt.timedelta) -> list[str]:
    """One block per instance, newest first; old snapshots are marked as such (that Lukas may be gone)."""
    if not saved:
        return [
            "no metrics saved yet: a running Lukas saves them every usage.metrics_snapshot_seconds (and when it stops)"
        ]
    lines: list[str] = []
    for item in sorted(saved, key=lambda s: s.taken_at, reverse=True):
        age = (now - item.taken_at).total_seconds()
        stale = " — STALE: this Lukas may have stopped" if age > stale_after.total_seconds() else ""
        lines.append(
            f"Lukas {item.version} on {item.instance_id} (up since {item.started_at:%Y-%m-%d %H:%M} UTC), "
            f"saved {_age(max(age, 0))} ago{stale}"
        )
        if item.contracts is None:
            lines.append("  contracts: saved by a different version of Lukas; cannot show them")
        else:
            lines += ["  " + line for line in render_metrics(item.contracts)]
        lines += ["  " + line for line in breaker_lines(item.breakers)]
    return lines
