"""Contract metrics and breaker state (seed 000), kept outside the engine so both survive a config reload.

Everything is keyed by "stage/contract" (e.g. "chat_input/banned_terms"): one contract can run in several
stages and misbehave in only one. `DEFAULT_METRICS` is the process-wide registry that engines share
unless a test passes its own. Each contract's breaker is the shared one (bot.breaker), counting only raises.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.breaker import OPEN, Breaker, StateChange
from bot.contracts.base import Verdict

LATENCY_WINDOW = 2048  # recent runs kept per contract for p50/p99
PARTIAL_STAGE = "reply_partial"  # streaming prefix checks: counted, but kept out of the overall rates


@dataclass
class _ContractState:
    validations: int = 0
    violations: int = 0
    fixes: int = 0
    errors: int = 0
    skipped: int = 0
    breaker: Breaker | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))


@dataclass
class _StageState:
    checks: int = 0
    passed: int = 0
    fixed: int = 0
    violated: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))


@dataclass(frozen=True)
class ContractStats:
    key: str  # "stage/name"
    validations: int
    violations: int
    fixes: int
    errors: int
    skipped: int  # runs skipped while the breaker was open
    breaker_activations: int
    breaker_open: bool
    breaker_seconds_left: float
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class StageStats:
    stage: str
    checks: int
    passed: int
    fixed: int
    violated: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class ContractMetricsSnapshot:
    contracts: list[ContractStats]
    stages: list[StageStats]
    checks: int  # candidates checked (streaming prefixes excluded)
    violation_rate: float | None  # share of those checks that ended in a violation
    auto_fix_success_rate: float | None  # fixes / (fixes + violations), over contract findings

    def contract(self, key: str) -> ContractStats | None:
        return next((stats for stats in self.contracts if stats.key == key), None)

    def stage(self, name: str) -> StageStats | None:
        return next((stats for stats in self.stages if stats.stage == name), None)


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not values:
        return None
    rank = max(math.ceil(fraction * len(values)) - 1, 0)
    return values[min(rank, len(values) - 1)]


class ContractMetrics:
    """Counters, latencies and breaker state. Thread-safe; all times come in from the caller's clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._contracts: dict[str, _ContractState] = {}
        self._stages: dict[str, _StageState] = {}

    def _state(self, key: str) -> _ContractState:
        state = self._contracts.get(key)
        if state is None:
            state = self._contracts.setdefault(key, _ContractState())
        return state

    def breaker(
        self, key: str, *, threshold: int, cooldown: float, clock: Callable[[], float], on_change: StateChange
    ) -> Breaker:
        """The contract's breaker (kept across reloads; settings follow the config in force)."""
        state = self._state(key)
        with self._lock:
            if state.breaker is None:
                state.breaker = Breaker(
                    name=key, fail_max=threshold, reset_seconds=cooldown, clock=clock, on_change=on_change
                )
            else:
                state.breaker.configure(fail_max=threshold, reset_seconds=cooldown)
            return state.breaker

    def record_skip(self, key: str) -> None:
        with self._lock:
            self._state(key).skipped += 1

    def record(self, key: str, *, verdict: Verdict, seconds: float) -> None:
        state = self._state(key)
        with self._lock:
            state.validations += 1
            if verdict is Verdict.VIOLATION:
                state.violations += 1
            elif verdict is Verdict.FIXED:
                state.fixes += 1
            state.latencies.append(seconds)

    def record_error(self, key: str, *, seconds: float) -> None:
        state = self._state(key)
        with self._lock:
            state.validations += 1
            state.errors += 1
            state.latencies.append(seconds)

    def record_check(self, stage: str, *, verdict: Verdict, seconds: float) -> None:
        with self._lock:
            state = self._stages.get(stage) or self._stages.setdefault(stage, _StageState())
            state.checks += 1
            if verdict is Verdict.PASS:
                state.passed += 1
            elif verdict is Verdict.FIXED:
                state.fixed += 1
            else:
                state.violated += 1
            state.latencies.append(seconds)

    def reset(self) -> None:
        with self._lock:
            self._contracts.clear()
            self._stages.clear()

    def snapshot(self) -> ContractMetricsSnapshot:
        with self._lock:
            contracts = [_contract_stats(key, state) for key, state in sorted(self._contracts.items())]
            stages = [_stage_stats(name, state) for name, state in sorted(self._stages.items())]
        counted = [stats for stats in stages if stats.stage != PARTIAL_STAGE]
        checks = sum(stats.checks for stats in counted)
        violated = sum(stats.violated for stats in counted)
        main = [stats for stats in contracts if not stats.key.startswith(PARTIAL_STAGE + "/")]
        fixes = sum(stats.fixes for stats in main)
        problems = fixes + sum(stats.violations for stats in main)
        return ContractMetricsSnapshot(
            contracts=contracts,
            stages=stages,
            checks=checks,
            violation_rate=violated / checks if checks else None,
            auto_fix_success_rate=fixes / problems if problems else None,
        )


def _ms(values: deque[float]) -> tuple[float | None, float | None]:
    ordered = sorted(values)
    p50, p99 = percentile(ordered, 0.50), percentile(ordered, 0.99)
    return (p50 * 1000 if p50 is not None else None, p99 * 1000 if p99 is not None else None)


def _contract_stats(key: str, state: _ContractState) -> ContractStats:
    p50, p99 = _ms(state.latencies)
    breaker = state.breaker
    seconds_left = breaker.seconds_left() if breaker is not None and breaker.state == OPEN else 0.0
    return ContractStats(
        key=key,
        validations=state.validations,
        violations=state.violations,
        fixes=state.fixes,
        errors=state.errors,
        skipped=state.skipped,
        breaker_activations=breaker.activations if breaker is not None else 0,
        breaker_open=seconds_left > 0,
        breaker_seconds_left=seconds_left,
        p50_ms=p50,
        p99_ms=p99,
    )


def _stage_stats(name: str, state: _StageState) -> StageStats:
    p50, p99 = _ms(state.latencies)
    return StageStats(name, state.checks, state.passed, state.fixed, state.violated, p50, p99)


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def _lat(p50: float | None, p99: float | None) -> str:
    return "no timings" if p50 is None or p99 is None else f"p50 {p50:.3f} ms, p99 {p99:.3f} ms"


def render_metrics(snapshot: ContractMetricsSnapshot) -> list[str]:
    """Text lines for `lukas stats` and the /lukas admin command."""
    if not snapshot.stages and not snapshot.contracts:
        return ["contracts: nothing checked yet"]
    lines = [
        f"contracts: {snapshot.checks} checks, violation rate {_pct(snapshot.violation_rate)}, "
        f"auto-fix success {_pct(snapshot.auto_fix_success_rate)}"
    ]
    for stage in snapshot.stages:
        lines.append(
            f"  {stage.stage}: {stage.checks} checks ({stage.passed} passed, {stage.fixed} fixed, "
            f"{stage.violated} refused), {_lat(stage.p50_ms, stage.p99_ms)}"
        )
    for stats in snapshot.contracts:
        breaker = f"breaker tripped {stats.breaker_activations}x"
        if stats.breaker_open:
            breaker += f", OPEN for {stats.breaker_seconds_left:.0f}s more ({stats.skipped} skipped)"
        elif stats.skipped:
            breaker += f" ({stats.skipped} skipped)"
        lines.append(
            f"  {stats.key}: {stats.validations} runs, {stats.violations} violations, {stats.fixes} fixes, "
            f"{stats.errors} errors, {_lat(stats.p50_ms, stats.p99_ms)}, {breaker}"
        )
    return lines


DEFAULT_METRICS = ContractMetrics()
