"""The usage and cost report, from already-aggregated rows. Pure: `lukas usage` and `/lukas usage` share it.

Per provider and model: calls, errors (requests that failed, retries included), fallbacks (calls that ended
without an answer, so a fallback line or another provider stepped in), tokens and cost.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class ModelUsage:
    provider: str
    model: str
    calls: int = 0
    ok_calls: int = 0
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # of the priced calls
    unpriced_calls: int = 0  # calls whose cost is unknown (the model had no price)

    @property
    def fallbacks(self) -> int:
        """Calls that gave no answer (outcome other than ok)."""
        return self.calls - self.ok_calls

    @property
    def errors(self) -> int:
        """Requests to the provider that failed: every attempt except the successful ones."""
        return max(self.attempts - self.ok_calls, 0)


@dataclass(frozen=True)
class ImageUsage:
    status: str
    count: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class PurposeUsage:
    """Model calls for one purpose (chat, summary, caption): the ledger's `purpose` column."""

    calls: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class UsageData:
    """What the database holds for one window, plus month to date."""

    since: dt.datetime
    until: dt.datetime
    messages: dict[str, int] = field(default_factory=dict)  # sender (user/bot/fallback) -> count
    flagged: int = 0  # people's messages refused by the input checks
    models: list[ModelUsage] = field(default_factory=list)
    images: list[ImageUsage] = field(default_factory=list)
    purposes: dict[str, PurposeUsage] = field(default_factory=dict)  # purpose -> calls and cost
    month_start: dt.datetime | None = None
    month_chat_usd: float = 0.0
    month_chat_unpriced_calls: int = 0
    month_image_usd: float = 0.0

    @property
    def total_calls(self) -> int:
        return sum(m.calls for m in self.models)

    @property
    def total_cost_usd(self) -> float:
        return sum(m.cost_usd for m in self.models)

    @property
    def unpriced_calls(self) -> int:
        return sum(m.unpriced_calls for m in self.models)

    @property
    def image_count(self) -> int:
        return sum(i.count for i in self.images)

    @property
    def image_cost_usd(self) -> float:
        return sum(i.cost_usd for i in self.images)


def month_start(*, now: dt.datetime, timezone: str) -> dt.datetime:
    """The first instant of `now`'s calendar month in `timezone` (the image budget's month), in UTC."""
    local = now.astimezone(ZoneInfo(timezone))
    return dt.datetime(local.year, local.month, 1, tzinfo=local.tzinfo).astimezone(dt.UTC)


def usd(value: float) -> str:
    """Cents for big sums, more digits for the tiny per-message costs chat models have."""
    return f"${value:,.2f}" if abs(value) >= 10 else f"${value:.4f}"


def cost_text(cost_usd: float, *, calls: int, unpriced_calls: int) -> str:
    """A cost that admits what it does not know: calls of unpriced models are never counted as $0."""
    if unpriced_calls and unpriced_calls >= calls:
        return "unknown (no price in config.yml)"
    if unpriced_calls:
        return f"{usd(cost_usd)} + unknown for {_n(unpriced_calls)} call(s) without a price"
    return usd(cost_usd)


def _n(value: int) -> str:
    return f"{value:,}"


def _budget_line(label: str, spent: float, budget: float | None, *, unpriced_calls: int = 0) -> str:
    if unpriced_calls:
        return _budget_line(label, spent, budget) + f" + unknown for {_n(unpriced_calls)} call(s) without a price"
    if budget is None:
        return f"  {label}: {usd(spent)} (no budget set)"
    if budget <= 0:
        return f"  {label}: {usd(spent)} of a {usd(budget)} budget"
    share = spent / budget * 100
    warn = " ⚠️ over budget" if spent > budget + 1e-9 else ""
    return f"  {label}: {usd(spent)} of {usd(budget)} ({share:.0f}%){warn}"


def report_lines(
    *, data: UsageData, days: int, chat_budget_usd: float | None, image_budget_usd: float | None
) -> list[str]:
    """The report as text lines (Slack shows them in a code block, the CLI prints them)."""
    lines = [f"Usage for the last {days} day(s) ({data.since:%Y-%m-%d %H:%M} to {data.until:%Y-%m-%d %H:%M} UTC)"]
    m = data.messages
    people, replies, fallbacks = m.get("user", 0), m.get("bot", 0), m.get("fallback", 0)
    lines.append(
        f"Messages: {_n(people)} from people, {_n(replies)} replies, {_n(fallbacks)} fallback lines"
        + (f", {_n(data.flagged)} refused by the checks" if data.flagged else "")
    )
    lines.append(
        f"Model calls: {_n(data.total_calls)}, cost "
        + cost_text(data.total_cost_usd, calls=data.total_calls, unpriced_calls=data.unpriced_calls)
        + ("" if data.models else " (none in this window)")
    )
    for model in sorted(data.models, key=lambda u: (-u.cost_usd, -u.calls, u.provider, u.model)):
        lines.append(
            f"  {model.provider} {model.model}: {_n(model.calls)} calls, {_n(model.errors)} errors, "
            f"{_n(model.fallbacks)} fallbacks, {_n(model.prompt_tokens)} in + {_n(model.completion_tokens)} out "
            f"tokens, {'cost ' if model.unpriced_calls >= model.calls > 0 else ''}"
            + cost_text(model.cost_usd, calls=model.calls, unpriced_calls=model.unpriced_calls)
        )
    summary = data.purposes.get("summary")
    if summary is not None and summary.calls:
        chat = data.purposes.get("chat", PurposeUsage())
        lines.append(
            f"  of which conversation summaries (memory): {_n(summary.calls)} calls, {usd(summary.cost_usd)}; "
            f"replies: {_n(chat.calls)} calls, {usd(chat.cost_usd)}"
        )
    images = sorted(data.images, key=lambda i: (-i.count, i.status))
    detail = ", ".join(f"{i.count} {i.status}" for i in images)
    lines.append(
        f"Pictures: {_n(data.image_count)}" + (f" ({detail})" if detail else "") + f", cost {usd(data.image_cost_usd)}"
    )
    if data.month_start is not None:
        lines.append(f"This month (since {data.month_start:%Y-%m-%d %H:%M} UTC):")
        lines.append(
            _budget_line("chat", data.month_chat_usd, chat_budget_usd, unpriced_calls=data.month_chat_unpriced_calls)
        )
        if chat_budget_usd is not None and data.month_chat_usd >= chat_budget_usd - 1e-12:
            lines.append("  ⚠️ chat budget reached: Lukas answers with a resting line until next month")
        lines.append(_budget_line("pictures", data.month_image_usd, image_budget_usd))
    return lines
