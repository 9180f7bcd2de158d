"""The contract layer (seed 000): checks on what goes to and comes from the models.

Contracts look at a chat prompt (ChatCandidate), an image prompt or a reply, and say pass, fixed (new
value + reason) or violation (reason). `ContractEngine.from_config` builds the configured stages; the
chat pipeline and the image job call the `check_*` methods, which never raise. Metrics and breaker
state live in a shared `ContractMetrics` registry (DEFAULT_METRICS unless one is passed in), so they
survive the engine being rebuilt on a config reload.
"""

from bot.contracts.base import ChatCandidate, Contract, ContractOutcome, Finding, Verdict
from bot.contracts.engine import ContractEngine, ContractSlot
from bot.contracts.metrics import (
    DEFAULT_METRICS,
    ContractMetrics,
    ContractMetricsSnapshot,
    ContractStats,
    StageStats,
    render_metrics,
)
from bot.contracts.normalise import BannedTermMatcher

__all__ = [
    "DEFAULT_METRICS",
    "BannedTermMatcher",
    "ChatCandidate",
    "Contract",
    "ContractEngine",
    "ContractMetrics",
    "ContractMetricsSnapshot",
    "ContractOutcome",
    "ContractSlot",
    "ContractStats",
    "Finding",
    "StageStats",
    "Verdict",
    "render_metrics",
]
