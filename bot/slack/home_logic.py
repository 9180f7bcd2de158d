"""Lukas's App Home tab as Block Kit (issue 16). Pure: facts in, a `views.publish` view out.

Everyone sees the latest weekly picture, how to talk to him and the suggested prompts; admins also see a compact
status (model chain and breakers, this month's spending against the budgets, the next picture).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

MAX_BLOCKS = 100  # Slack's limit for a Home tab


@dataclass(frozen=True)
class Picture:
    file_id: str | None
    permalink: str | None
    theme: str | None
    created_at: dt.datetime | None


@dataclass(frozen=True)
class AdminFacts:
    chain: tuple[str, ...]  # "name:model", in order
    breakers: dict[str, str]
    chat_spent_usd: float
    chat_budget_usd: float | None
    image_spent_usd: float
    image_budget_usd: float
    next_picture: dt.datetime | None
    pictures_enabled: bool


@dataclass(frozen=True)
class HomeFacts:
    name: str
    picture: Picture | None
    prompts: list[tuple[str, str]] = field(default_factory=list)  # (title, message)
    pictures_on_request: bool = True
    admin: AdminFacts | None = None


def _text(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _money(spent: float, budget: float | None) -> str:
    if budget is None:
        return f"${spent:.2f} (no budget set)"
    share = f", {spent / budget:.0%}" if budget > 0 else ""
    return f"${spent:.2f} of ${budget:.2f}{share}"


def _picture_blocks(picture: Picture | None, name: str) -> list[dict[str, Any]]:
    if picture is None:
        return [_text("_No weekly picture yet: my first one is coming soon!_ 🎨")]
    when = f" ({picture.created_at:%d %B %Y})" if picture.created_at else ""
    title = f"This week's picture{when}" + (f": {_escape(picture.theme)}" if picture.theme else "")
    alt = f"{name} the Bear, the team's stuffed bear mascot" + (f", {picture.theme}" if picture.theme else "")
    if picture.file_id:
        image = {"type": "slack_file", "id": picture.file_id}
        block = {"type": "image", "slack_file": image, "alt_text": alt[:2000], "title": {"type": "plain_text",
                 "text": title[:2000]}}  # fmt: skip
        return [block]
    if picture.permalink:
        return [_text(f"*{title}*\n<{picture.permalink}|See it in Slack>")]
    return [_text(f"*{title}*")]


def _admin_blocks(admin: AdminFacts) -> list[dict[str, Any]]:
    links = " → ".join(f"`{key}` ({admin.breakers.get(key, 'closed')})" for key in admin.chain) or "none"
    if not admin.pictures_enabled:
        following = "none (images.enabled is false)"
    elif admin.next_picture is not None:
        following = f"{admin.next_picture.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    else:
        following = "not scheduled"
    lines = [
        f"*Models:* {links} → fallback lines",
        f"*Chat this month:* {_money(admin.chat_spent_usd, admin.chat_budget_usd)}",
        f"*Pictures this month:* {_money(admin.image_spent_usd, admin.image_budget_usd)}",
        f"*Next picture:* {following}",
    ]
    return [
        {"type": "divider"},
        {"type": "header", "text": {"type": "plain_text", "text": "For admins"}},
        _text("\n".join(lines)),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "More with `/lukas status` and `/lukas usage`."}]},
    ]


def home_view(facts: HomeFacts) -> dict[str, Any]:
    """The Home tab view (type "home")."""
    name = _escape(facts.name)
    how = [
        f"• *DM me* here in my Messages tab, or *mention @{name}* in a channel I'm in; I answer in a thread.",
        "• Reply in the thread to keep talking: I remember the conversation.",
    ]
    if facts.pictures_on_request:
        how.append(f"• Want a picture? *@{name} draw yourself at the beach* or `/lukas draw <idea>` 🎨")
    how.append("• `/lukas help` lists my commands.")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Hi, I'm {facts.name} the Bear 🐻"[:150]}},
        *_picture_blocks(facts.picture, facts.name),
        {"type": "divider"},
        _text("*How to talk to me*\n" + "\n".join(how)),
    ]
    if facts.prompts:
        ideas = "\n".join(f"• *{_escape(title)}*: {_escape(message)}" for title, message in facts.prompts)
        blocks.append(_text("*Things you could ask me*\n" + ideas))
    if facts.admin is not None:
        blocks += _admin_blocks(facts.admin)
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}
