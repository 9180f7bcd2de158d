"""Decide what a Slack event means for Lukas: a message to answer, or something to ignore (and why).

Pure: no Slack calls, no database. The listener logs the reason for every ignored event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Subtypes that are still a person talking to Lukas; every other subtype (edits, deletes, joins, bot
# posts, ...) is ignored so Lukas never answers himself or loops on edits.
ANSWERABLE_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
_SLACK_TS = re.compile(r"^\d{9,11}\.\d{1,6}$")


@dataclass(frozen=True)
class IncomingMessage:
    team_id: str
    channel_id: str
    user_id: str
    text: str  # the mention of Lukas removed
    ts: str
    conversation_thread_ts: str  # '' for a DM's main timeline, else the thread's root ts
    reply_thread_ts: str | None  # where Lukas answers: None = the DM's main timeline
    kind: str  # "dm" | "thread"
    event_id: str | None
    only_if_lukas_in_thread: bool  # a thread reply without a mention: answer only where Lukas already talks


@dataclass(frozen=True)
class Ignored:
    reason: str


def strip_mention(text: str, *, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def classify_event(
    *,
    event: Any,
    event_type: str,
    bot_user_id: str | None,
    bot_id: str | None,
    event_id: str | None,
    team_id: str | None,
) -> IncomingMessage | Ignored:
    if not isinstance(event, Mapping):
        return Ignored("malformed event (not an object)")
    subtype = event.get("subtype")
    if subtype and subtype not in ANSWERABLE_SUBTYPES:
        return Ignored(f"subtype {subtype}")
    if event.get("bot_id") or event.get("bot_profile"):
        return Ignored("own message" if bot_id and event.get("bot_id") == bot_id else "message from a bot")
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if bot_user_id and user == bot_user_id:
        return Ignored("own message")
    missing = [name for name, value in (("user", user), ("channel", channel), ("ts", ts)) if not isinstance(value, str)]
    if missing or not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)):
        return Ignored(f"missing fields: {', '.join(missing)}")
    if not _SLACK_TS.match(ts):
        return Ignored("malformed ts")
    raw_text = event.get("text")
    if raw_text is not None and not isinstance(raw_text, str):
        return Ignored("malformed text")
    raw_text = raw_text or ""
    mentioned = event_type == "app_mention" or bool(bot_user_id and f"<@{bot_user_id}" in raw_text)
    text = strip_mention(raw_text, bot_user_id=bot_user_id)
    if not text:
        return Ignored("no text (empty or file-only message)")
    thread_ts = event.get("thread_ts") if isinstance(event.get("thread_ts"), str) else None
    is_dm = event.get("channel_type") == "im" or (event_type == "message" and channel.startswith("D"))
    common: dict[str, Any] = {
        "team_id": team_id or "",
        "channel_id": channel,
        "user_id": user,
        "text": text,
        "ts": ts,
        "event_id": event_id,
    }
    if is_dm:
        return IncomingMessage(
            **common,
            conversation_thread_ts=thread_ts or "",
            reply_thread_ts=thread_ts,
            kind="dm",
            only_if_lukas_in_thread=False,
        )
    if mentioned:
        root = thread_ts or ts
        return IncomingMessage(
            **common, conversation_thread_ts=root, reply_thread_ts=root, kind="thread", only_if_lukas_in_thread=False
        )
    if thread_ts:
        return IncomingMessage(
            **common,
            conversation_thread_ts=thread_ts,
            reply_thread_ts=thread_ts,
            kind="thread",
            only_if_lukas_in_thread=True,
        )
    return Ignored("channel message without a mention")
