"""`/lukas status` and `/lukas image now` answers, from facts gathered elsewhere. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bot.admin.usage_logic import usd


@dataclass(frozen=True)
class ImageFacts:
    status: str
    created_at: dt.datetime | None
    cost_usd: float = 0.0
    theme: str | None = None
    permalink: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class MemoryFacts:
    enabled: bool
    read_threads: bool
    summaries: int  # conversations that have a rolling summary


@dataclass(frozen=True)
class StatusFacts:
    version: str
    uptime_seconds: float
    chain: tuple[str, ...]  # "name:model" of each model Lukas asks, in order
    breakers: dict[str, str]  # "name:model" -> closed | open | half-open
    database_ok: bool
    scheduler: str  # running | stopped | disabled
    next_image_run: dt.datetime | None
    last_image: ImageFacts | None
    config_path: str
    last_reload: str | None = None  # what the last reload did, if any since the start
    contracts: list[str] = field(default_factory=list)  # render_metrics lines of this process
    stuck: dict[str, int] | None = None  # questions stuck in posting (past the grace) and failed; None: unknown
    memory: MemoryFacts | None = None


def duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


def _when(moment: dt.datetime | None) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" if moment else "?"


def image_line(image: ImageFacts | None) -> str:
    if image is None:
        return "no picture made yet"
    text = f"{_when(image.created_at)}, {image.status}"
    if image.theme:
        text += f", theme {image.theme}"
    text += f", {usd(image.cost_usd)}"
    if image.permalink:
        text += f" — {image.permalink}"
    elif image.error and image.status != "succeeded":
        text += f" — {image.error[:200]}"
    return text


def _model_line(facts: StatusFacts) -> str:
    def link(key: str) -> str:
        name, _, model = key.partition(":")
        return f"{name} {model}, breaker {facts.breakers.get(key, 'closed (not called yet)')}"

    others = [f"{k} {v}" for k, v in sorted(facts.breakers.items()) if k not in facts.chain and v != "closed"]
    line = (
        f"Model: {link(facts.chain[0])}"
        if len(facts.chain) == 1
        else ("Models, in order: " + " → ".join(link(key) for key in facts.chain))
    )
    return line + (f" (also: {', '.join(others)})" if others else "")


def status_lines(facts: StatusFacts) -> list[str]:
    lines = [
        f"Lukas {facts.version}, up {duration(facts.uptime_seconds)}",
        _model_line(facts),
        f"Database: {'ok' if facts.database_ok else 'UNREACHABLE'}",
        f"Config: {facts.config_path}" + (f"; last reload: {facts.last_reload}" if facts.last_reload else ""),
        f"Last picture: {image_line(facts.last_image) if facts.database_ok else 'unknown (database unreachable)'}",
    ]
    if facts.stuck is not None:
        lines.append(
            f"Questions stuck: {facts.stuck.get('posting', 0)} in posting (may or may not be in Slack), "
            f"{facts.stuck.get('failed', 0)} failed (Slack would not take the reply)"
        )
    if facts.scheduler == "disabled":
        lines.append("Next picture: none (images.enabled is false)")
    else:
        nxt = _when(facts.next_image_run) if facts.next_image_run else "not scheduled"
        lines.append(f"Next picture: {nxt} (scheduler {facts.scheduler})")
    if facts.memory is not None:
        lines.append(memory_line(facts.memory))
    lines += facts.contracts
    return lines


def memory_line(memory: MemoryFacts) -> str:
    state = "on" if memory.enabled else "off"
    threads = "reads threads when mentioned" if memory.read_threads else "does not read threads"
    return f"Memory: summaries {state}, {memory.summaries:,} conversation(s) with a summary; {threads}"


def image_now_text(image: ImageFacts) -> str:
    if image.status == "succeeded":
        return f"Here's a fresh picture of me 🐻🎨 ({image_line(image)})"
    reason = image.error or "no reason recorded"
    return f"No picture this time: {image.status} — {reason[:500]}"
