"""Run the configured contracts over a candidate, in order, and never let one of them break the chat path.

A contract that raises is logged (ERROR), counted as an error and treated as a pass for that check; after
`breaker.error_threshold` errors in a row it is skipped for `breaker.cooldown_seconds` (CRITICAL), then
given one trial run (INFO when it works again). Violations never count towards the breaker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.breaker import CLOSED, OPEN, Breaker
from bot.config.contracts_schema import CHAT_INPUT, CHAT_OUTPUT, IMAGE_PROMPT, ContractBreakerConfig, ContractsConfig
from bot.contracts.base import (
    ChatCandidate,
    Contract,
    ContractOutcome,
    Finding,
    Verdict,
    coerce_candidate,
    content_text,
)
from bot.contracts.builtins import build_contract
from bot.contracts.metrics import DEFAULT_METRICS, PARTIAL_STAGE, ContractMetrics, ContractMetricsSnapshot
from bot.contracts.normalise import BannedTermMatcher
from bot.contracts.terms import load_banned_terms
from bot.errors import BreakerOpen

logger = logging.getLogger("bot.contracts")


@dataclass(frozen=True)
class ContractSlot:
    """A contract in a stage's list, with its own auto-fix switch (seed 000)."""

    contract: Contract
    auto_fix: bool = True


def _slots(items: Iterable[ContractSlot | Contract]) -> tuple[ContractSlot, ...]:
    return tuple(item if isinstance(item, ContractSlot) else ContractSlot(item) for item in items)


def _as_text(value: Any) -> str:
    return content_text(value)


def _complete_words(prefix: str) -> str:
    """A streaming prefix without its last, possibly unfinished word ("I am your ass|istant")."""
    if not prefix or prefix[-1].isspace():
        return prefix
    for index in range(len(prefix) - 1, -1, -1):
        if prefix[index].isspace():
            return prefix[: index + 1]
    return ""


class ContractEngine:
    """Cheap to build; rebuild on every config reload. Metrics and breaker state live in `metrics`."""

    def __init__(
        self,
        *,
        chat_input: Iterable[ContractSlot | Contract] = (),
        chat_output: Iterable[ContractSlot | Contract] = (),
        image_prompt: Iterable[ContractSlot | Contract] = (),
        breaker: ContractBreakerConfig | None = None,
        metrics: ContractMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stages = {
            CHAT_INPUT: _slots(chat_input),
            CHAT_OUTPUT: _slots(chat_output),
            IMAGE_PROMPT: _slots(image_prompt),
        }
        self._partial = tuple(slot for slot in self._stages[CHAT_OUTPUT] if slot.contract.partial)
        self._breaker = breaker or ContractBreakerConfig()
        self._metrics = metrics if metrics is not None else DEFAULT_METRICS
        self._clock = clock

    @classmethod
    def from_config(
        cls,
        config: ContractsConfig,
        *,
        base_dir: Path,
        metrics: ContractMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> ContractEngine:
        """Build from the `contracts:` section; raises ConfigError for an unreadable or bad banned-terms file."""
        matcher = BannedTermMatcher.compile(load_banned_terms(config, base_dir=Path(base_dir)))
        stages = {
            stage: [
                ContractSlot(build_contract(spec, stage=stage, matcher=matcher), spec.auto_fix)
                for spec in getattr(config, stage)
                if spec.enabled
            ]
            for stage in (CHAT_INPUT, CHAT_OUTPUT, IMAGE_PROMPT)
        }
        return cls(**stages, breaker=config.breaker, metrics=metrics, clock=clock)

    @property
    def stages(self) -> dict[str, list[str]]:
        """Contract names per stage, in run order (for status output)."""
        return {stage: [slot.contract.name for slot in slots] for stage, slots in self._stages.items()}

    def check_chat_input(self, candidate: ChatCandidate) -> ContractOutcome:
        usable = coerce_candidate(candidate)
        if usable is None:
            logger.error("check_chat_input got %s, not a ChatCandidate with a message list", type(candidate).__name__)
            return ContractOutcome(Verdict.VIOLATION, candidate, ["engine: not a valid chat candidate"], "engine")
        return self._guarded(CHAT_INPUT, self._stages[CHAT_INPUT], usable)

    def check_reply(self, text: str) -> ContractOutcome:
        return self._guarded(CHAT_OUTPUT, self._stages[CHAT_OUTPUT], _as_text(text))

    def check_reply_partial(self, text: str) -> ContractOutcome:
        """Policy checks (banned terms, secrets) on a streaming prefix: no emptiness/length checks, no fixes."""
        prefix = _as_text(text)
        outcome = self._guarded(PARTIAL_STAGE, self._partial, _complete_words(prefix), partial=True)
        return replace(outcome, value=prefix)

    def check_image_prompt(self, prompt: str) -> ContractOutcome:
        return self._guarded(IMAGE_PROMPT, self._stages[IMAGE_PROMPT], _as_text(prompt))

    def metrics(self) -> ContractMetricsSnapshot:
        return self._metrics.snapshot()

    def _guarded(
        self, stage: str, slots: tuple[ContractSlot, ...], value: Any, *, partial: bool = False
    ) -> ContractOutcome:
        """The last line of defence: a bug in the engine itself lets the value through, loudly."""
        try:
            return self._run(stage, slots, value, partial=partial)
        except Exception:
            logger.exception("contract engine failed in %s; letting the value through unchecked", stage)
            return ContractOutcome(Verdict.PASS, value, [], None)

    def _run(self, stage: str, slots: tuple[ContractSlot, ...], value: Any, *, partial: bool) -> ContractOutcome:
        started = time.perf_counter()
        reasons: list[str] = []
        fixed = False
        outcome: ContractOutcome | None = None
        for slot in slots:
            contract = slot.contract
            key = f"{stage}/{contract.name}"
            breaker = self._metrics.breaker(
                key,
                threshold=self._breaker.error_threshold,
                cooldown=self._breaker.cooldown_seconds,
                clock=self._clock,
                on_change=_log_breaker_change,
            )
            auto_fix = slot.auto_fix and not partial
            began = time.perf_counter()
            try:
                with breaker.calling():
                    finding = contract.check(value, auto_fix=auto_fix)
                    if not isinstance(finding, Finding) or (finding.verdict is Verdict.FIXED and finding.value is None):
                        raise TypeError(f"{contract.name}.check returned {finding!r}, not a Finding")
            except BreakerOpen as exc:
                if exc.tripped_by is None:  # open: skipped, not even called
                    self._metrics.record_skip(key)
                else:
                    self._on_error(key, seconds=time.perf_counter() - began, error=exc.tripped_by)
                continue
            except Exception as exc:
                self._on_error(key, seconds=time.perf_counter() - began, error=exc)
                continue
            verdict, reason = finding.verdict, finding.reason
            if verdict is Verdict.FIXED and not auto_fix:
                verdict, reason = Verdict.VIOLATION, f"{reason} (auto-fix is off)"
            self._metrics.record(key, verdict=verdict, seconds=time.perf_counter() - began)
            if verdict is Verdict.PASS:
                continue
            reasons.append(f"{contract.name}: {reason}")
            if verdict is Verdict.FIXED:
                value, fixed = finding.value, True
                logger.debug("contract %s fixed the %s: %s", key, stage, reason)
                continue
            logger.info("contract %s refused the %s: %s", key, stage, reason)
            outcome = ContractOutcome(Verdict.VIOLATION, value, reasons, contract.name)
            break
        if outcome is None:
            outcome = ContractOutcome(Verdict.FIXED if fixed else Verdict.PASS, value, reasons, None)
        self._metrics.record_check(stage, verdict=outcome.verdict, seconds=time.perf_counter() - started)
        return outcome

    def _on_error(self, key: str, *, seconds: float, error: BaseException) -> None:
        logger.error(
            "contract %s raised; treating it as passed for this check", key, exc_info=(type(error), error, None)
        )
        self._metrics.record_error(key, seconds=seconds)


def _log_breaker_change(breaker: Breaker, old: str, new: str) -> None:
    if new == OPEN:
        logger.critical(
            "CONTRACT BREAKER OPEN: %s keeps raising; it is SKIPPED for %.0fs. "
            "Fix it or its config: until then its check does not run.",
            breaker.name,
            breaker.reset_seconds,
        )
    elif new == CLOSED:
        logger.info("contract %s works again; its breaker is closed", breaker.name)
