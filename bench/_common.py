"""Shared bits for the benchmarks: run from the repo root, e.g. `python bench/chat_ack_latency.py`."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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


def bench_config(overrides: dict[str, Any], *, folder: Path) -> Any:
    """The repo's config.yml with `overrides` merged in, written to `folder` and loaded as a LiveConfig."""
    import yaml

    from bot.config.live import LiveConfig
    from bot.config.loader import load_config
    from tests.harness import REPO_CONFIG, deep_merge

    path = folder / "bench-config.yml"
    path.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(REPO_CONFIG.read_text()), overrides), allow_unicode=True))
    return LiveConfig(load_config(path), path=path)


# One person sends every benchmark message: the per-person limits would soon answer "slow down" without the model.
NO_LIMITS = {"limits": {"per_person": None, "per_conversation": None}}


def inline_chat(
    *, config: Any, database_url: str, model: Any, tag: str
) -> tuple[Any, Callable[[int], Awaitable[None]]]:
    """A ChatService on a real database, with `model` in-process and the recording platform instead of Slack.

    Returns the service and `send(i)`: accept one DM ("Tell me about bees, part i") and answer it inline rather
    than in a scheduled task, so the caller can time one message's own work.
    """
    from bot.chat.service import ChatService
    from bot.contracts.live import ContractsHolder
    from bot.store.db import create_engine
    from bot.store.units import UnitRunner
    from tests.harness import message_event
    from tests.standins.recording_platform import RecordingPlatform

    chat = ChatService(
        config=config,
        store=UnitRunner(create_engine(database_url)),
        platform=RecordingPlatform(names={"U0ANNA": "Anna"}),
        gateway=model,
        contracts=ContractsHolder(config),
    )
    scheduled: list[int] = []
    chat.schedule = scheduled.append  # type: ignore[method-assign,assignment]  # answered inline, to time it
    channel = f"D{tag}{time.time_ns() % 10_000_000}"

    async def send(i: int) -> None:
        await chat.accept_event(
            event=message_event(text=f"Tell me about bees, part {i}. " * 3, channel=channel),
            event_type="message",
            event_id=f"Ev{channel}{i}",
            team_id="T0TEAM",
            bot_user_id="UBOT",
            bot_id="BBOT",
        )
        await chat.answer(scheduled.pop())

    return chat, send
