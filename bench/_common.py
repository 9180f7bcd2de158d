"""Shared bits for the benchmarks: run from the repo root, e.g. `python bench/chat_ack_latency.py`."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
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


# For the benchmarks that time one long conversation on purpose (chat_pipeline_overhead, memory_bench): one person
# sends every message there, so the per-person and per-conversation limits would soon answer "slow down" without
# the model. Every other benchmark gives each conversation its own person and keeps the shipped limits.
NO_LIMITS = {"limits": {"per_person": None, "per_conversation": None}}

# Memory's summary requests go to the same model; their system prompt starts so (bot/chat/memory_logic.py).
SUMMARY_PROMPT_START = "You keep"


def is_summary_request(messages: Sequence[dict[str, Any]]) -> bool:
    return bool(messages) and str(messages[0].get("content", "")).startswith(SUMMARY_PROMPT_START)


def answers_asked(bodies: Sequence[dict[str, Any]]) -> int:
    """How many of these model request bodies asked for an answer (memory's summary requests left out)."""
    return sum(1 for body in bodies if not is_summary_request(body.get("messages") or []))


def answer_problems(
    *, expected: int, asked: int, texts: Sequence[str], reply: str | None, missing: Sequence[str] = ()
) -> list[str]:
    """What makes a run's figures wrong: replies that never came, answers given twice, model requests that do not
    match the messages, replies that are not the model's (a slow-down, limit or fallback line timed as an answer).

    `texts`: the replies Slack received; `reply`: the model's answer (None: do not compare texts); `missing`: what
    is still unanswered (channels), named in the message.
    """
    problems = []
    if len(texts) < expected:
        names = f" (no reply in {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''})" if missing else ""
        problems.append(f"{expected - len(texts)} of {expected} replies never came{names}")
    elif len(texts) > expected:
        problems.append(f"{len(texts)} replies to {expected} messages: some were answered twice")
    if asked != expected:
        problems.append(f"the model was asked for {asked} answers to {expected} messages")
    others = [text for text in texts if reply is not None and text != reply]
    if others:
        problems.append(
            f"{len(others)} of {len(texts)} replies were not the model's answer (a slow-down, limit or fallback "
            f"line?), e.g. {others[0][:100]!r}"
        )
    return problems


def fail_on(problems: Sequence[str]) -> None:
    """Exit non-zero with the problems, so a benchmark never prints figures of something else as its own."""
    if problems:
        raise SystemExit("benchmark FAILED: " + "; ".join(problems))


async def wait_for(condition: Callable[[], bool], *, timeout: float, poll: float = 0.01) -> bool:
    """Poll until `condition()` holds or `timeout` seconds pass; whether it held. Never waits without a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll)
    return True


def inline_chat(
    *, config: Any, database_url: str, model: Any, tag: str
) -> tuple[Any, Callable[[int], Awaitable[None]], Callable[[], list[str]]]:
    """A ChatService on a real database, with `model` in-process and the recording platform instead of Slack.

    Returns the service, `send(i)`: accept one DM ("Tell me about bees, part i") and answer it inline rather
    than in a scheduled task, so the caller can time one message's own work, and `replies()`: the texts posted.
    """
    from bot.chat.service import ChatService
    from bot.contracts.live import ContractsHolder
    from bot.store.db import create_engine
    from bot.store.units import UnitRunner
    from tests.harness import message_event
    from tests.standins.recording_platform import RecordingPlatform

    platform = RecordingPlatform(names={"U0ANNA": "Anna"})
    chat = ChatService(
        config=config,
        store=UnitRunner(create_engine(database_url)),
        platform=platform,
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

    return chat, send, lambda: [posted.text for posted in platform.posts]
