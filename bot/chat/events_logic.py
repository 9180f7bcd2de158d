"""Decide what a Slack event means for Lukas: a message to answer, or something to ignore (and why).

Pure: no Slack calls, no database. The listener logs the reason for every ignored event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Subtypes that are still a person talking to Lukas; every other subtype (joins, bot posts, ...) is ignored so
# Lukas never answers himself or loops on edits. Edits and deletions are applied to what is stored, never answered.
ANSWERABLE_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
EDITED, DELETED = "message_changed", "message_deleted"
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


@dataclass(frozen=True)
class EditedMessage:
    """A person changed a message: the stored text (if Lukas stored it) becomes `text`."""

    channel_id: str
    ts: str  # the edited message's own ts
    text: str  # the mention of Lukas removed; '' when nothing is left


@dataclass(frozen=True)
class DeletedMessage:
    """A message was deleted in Slack: its stored text (if any) is erased."""

    channel_id: str
    ts: str
    by_lukas: bool  # one of Lukas's own messages


def classify_change(
    *, event: Mapping[str, Any], bot_user_id: str | None, bot_id: str | None
) -> EditedMessage | DeletedMessage | Ignored:
    """message_changed / message_deleted -> what to apply to the store (EditedMessage, DeletedMessage or Ignored)."""
    subtype, channel = event.get("subtype"), event.get("channel")
    if not isinstance(channel, str):
        return Ignored(f"{subtype} without a channel")
    if subtype == DELETED:
        ts = event.get("deleted_ts")
        if not isinstance(ts, str) or not _SLACK_TS.match(ts):
            return Ignored("message_deleted without a valid deleted_ts")
        previous = event.get("previous_message")
        previous = previous if isinstance(previous, Mapping) else {}
        by_lukas = bool(
            (bot_id and previous.get("bot_id") == bot_id) or (bot_user_id and previous.get("user") == bot_user_id)
        )
        return DeletedMessage(channel_id=channel, ts=ts, by_lukas=by_lukas)
    message = event.get("message")
    if not isinstance(message, Mapping):
        return Ignored("message_changed without the message")
    if message.get("bot_id") or message.get("bot_profile") or (bot_user_id and message.get("user") == bot_user_id):
        return Ignored("edit of a bot's message")  # Lukas's own streamed replies are edited all the time
    ts, text = message.get("ts"), message.get("text")
    if not isinstance(ts, str) or not _SLACK_TS.match(ts):
        return Ignored("message_changed without a valid ts")
    if text is not None and not isinstance(text, str):
        return Ignored("message_changed with malformed text")
    return EditedMessage(channel_id=channel, ts=ts, text=strip_mention(text or "", bot_user_id=bot_user_id))


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
) -> IncomingMessage | EditedMessage | DeletedMessage | Ignored:
    if not isinstance(event, Mapping):
        return Ignored("malformed event (not an object)")
    subtype = event.get("subtype")
    if subtype in (EDITED, DELETED):
        return classify_change(event=event, bot_user_id=bot_user_id, bot_id=bot_id)
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
