"""Pictures drawn on request: the request key, the prompt, the caption and the quota day. Pure."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from bot.config.images_schema import ImagesConfig
from bot.images.slots_logic import local_day

REQUEST_PREFIX = "request:"
GLOBAL_LOCK_USER = "*"  # picture_quotas row every claim locks (day = the month), so claims never overlap


def request_key(*, channel_id: str, ts: str) -> str:
    """The GeneratedImage slot_key of a request: one per Slack message, so a redelivery (or the app_mention and
    message events of the same message) never buys twice. At most 64 characters."""
    key = f"{REQUEST_PREFIX}{channel_id}:{ts}"
    return key if len(key) <= 64 else REQUEST_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:48]


def is_request(slot_key: str | None) -> bool:
    return bool(slot_key and slot_key.startswith(REQUEST_PREFIX))


def request_prompt(*, images: ImagesConfig, subject: str) -> str:
    """The persona's base image prompt, the person's idea, then the house style (as the weekly picture)."""
    parts = [images.base_prompt.strip()]
    if subject.strip():
        parts.append(subject.strip())
    parts += [modifier.strip() for modifier in images.style_modifiers if modifier.strip()]
    return ", ".join(parts)


def request_caption(*, subject: str, name: str | None) -> str:
    """A short caption in Lukas's voice for a picture someone asked for."""
    who = f", {name}" if name else ""
    if subject:
        return f"Here you go{who}! Me, {subject} 🐻🎨 I hope you like it!"
    return f"Here you go{who}! A fresh picture of me 🐻🎨 I hope you like it!"


def quota_day(*, now: dt.datetime, timezone: str) -> str:
    """The quota's day (YYYY-MM-DD) in the image schedule's time zone, like the budget's month."""
    return local_day(moment=now, timezone=timezone).isoformat()


def quota_month(*, now: dt.datetime, timezone: str) -> str:
    return quota_day(now=now, timezone=timezone)[:7]


def alt_text_for_request(subject: str) -> str:
    text = "Illustration of Lukas, the team's stuffed teddy bear mascot"
    return (f"{text}, {subject}" if subject else text)[:1000]


IDEA_SHOWN = "[the picture idea]"


def without_idea(text: str, *, subject: str) -> str:
    """`text` (an error or check reason, which an image API may build from the prompt) with the person's idea cut
    out: logs and the error column never hold what someone asked to be drawn."""
    subject = subject.strip()
    return re.sub(re.escape(subject), IDEA_SHOWN, text, flags=re.IGNORECASE) if subject else text
