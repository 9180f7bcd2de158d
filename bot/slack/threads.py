"""Read a thread's earlier messages with conversations.replies (issue 15), for the chat core.

Pages through the thread oldest first (Slack's only order), keeping the root and a bounded tail of the newest
messages before the mention, so a 1,000-message thread costs a few pages and a few dozen kept messages. Authors'
names come from the shared users.info cache. Returns None when the thread cannot be read (private, not a member,
missing scope, Slack down): the caller then answers as before, with one log line.

Until the chat port (bot/chat/ports.py) lands this is called through a plain callable handed to the chat service;
it then becomes the port's `read_thread`.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.events_logic import strip_mention
from bot.chat.thread_logic import LUKAS, OTHER_BOT, PERSON, ThreadMessage
from bot.slack.client import slack_error
from bot.slack.replies import UserNames

log = logging.getLogger(__name__)
# Slack's system notices in a thread: never context.
_SKIPPED_SUBTYPES = frozenset({"channel_join", "channel_leave", "tombstone", "message_deleted", "group_join"})
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def message_text(message: Mapping[str, Any]) -> str:
    """The words of a message; for files and attachments without text, what they are ("[file: plan.pdf]")."""
    text = message.get("text") if isinstance(message.get("text"), str) else ""
    text = (text or "").strip()
    if text:
        return text
    parts: list[str] = []
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, Mapping):
            words = attachment.get("fallback") or attachment.get("text") or attachment.get("title")
            if isinstance(words, str) and words.strip():
                parts.append(words.strip())
    for file in message.get("files") or []:
        if isinstance(file, Mapping):
            title = file.get("title") or file.get("name") or "a file"
            parts.append(f"[file: {title}]")
    return " ".join(parts)


def describe(
    message: Any, *, own_user_id: str | None, own_bot_id: str | None
) -> tuple[str, str, str | None, str | None, str] | None:
    """(ts, author, user_id, bot name, text) of one conversations.replies message, or None to skip it."""
    if not isinstance(message, Mapping) or not isinstance(message.get("ts"), str):
        return None
    if message.get("subtype") in _SKIPPED_SUBTYPES:
        return None
    text = strip_mention(message_text(message), bot_user_id=own_user_id)
    if not text:
        return None
    user = message.get("user") if isinstance(message.get("user"), str) else None
    bot_id = message.get("bot_id") if isinstance(message.get("bot_id"), str) else None
    if (own_user_id and user == own_user_id) or (own_bot_id and bot_id == own_bot_id):
        return message["ts"], LUKAS, user, None, text
    if bot_id or message.get("bot_profile"):
        profile = message.get("bot_profile")
        name = (profile.get("name") if isinstance(profile, Mapping) else None) or message.get("username") or None
        return message["ts"], OTHER_BOT, user, name, text
    if user is None:
        return None
    return message["ts"], PERSON, user, None, text


class ThreadReader:
    def __init__(
        self,
        client: AsyncWebClient,
        names: UserNames,
        *,
        page_size: Callable[[], int],
        max_pages: Callable[[], int],
    ) -> None:
        self._client = client
        self._names = names
        self._page_size = page_size  # read at each call, so a reload applies at once
        self._max_pages = max_pages
        self._identity: tuple[str | None, str | None] | None = None

    async def _own_ids(self) -> tuple[str | None, str | None]:
        if self._identity is None:
            response = await self._client.auth_test()
            self._identity = (response.get("user_id"), response.get("bot_id"))
        return self._identity

    async def read(self, *, channel: str, thread_ts: str, before_ts: str, keep: int) -> list[ThreadMessage] | None:
        """The thread's root and up to `keep - 1` of its newest messages before `before_ts`, oldest first."""
        try:
            own_user_id, own_bot_id = await self._own_ids()
            root: tuple[str, str, str | None, str | None, str] | None = None
            tail: deque[tuple[str, str, str | None, str | None, str]] = deque(maxlen=max(keep - 1, 0))
            cursor: str | None = None
            pages = 0
            while True:
                response = await self._client.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    latest=before_ts,
                    inclusive=False,
                    limit=self._page_size(),
                    cursor=cursor,
                )
                pages += 1
                for raw in response.get("messages") or []:
                    item = describe(raw, own_user_id=own_user_id, own_bot_id=own_bot_id)
                    if item is None or _ts_key(item[0]) >= _ts_key(before_ts):
                        continue
                    if raw.get("ts") == thread_ts:
                        root = item
                    else:
                        tail.append(item)
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor or not response.get("has_more", True):
                    break
                if pages >= self._max_pages():
                    log.info("thread %s in %s is longer than %d pages; using what was read", thread_ts, channel, pages)
                    break
        except SlackApiError as exc:
            log.warning(
                "cannot read the thread %s in %s (%s); answering from the mention alone",
                thread_ts,
                channel,
                slack_error(exc),
            )
            return None
        except Exception as exc:
            log.warning(
                "cannot read the thread %s in %s (%s); answering from the mention alone",
                thread_ts,
                channel,
                type(exc).__name__,
            )
            return None
        items = ([root] if root is not None else []) + list(tail)
        return [await self._resolved(item) for item in items]

    async def _resolved(self, item: tuple[str, str, str | None, str | None, str]) -> ThreadMessage:
        ts, author, user_id, bot_name, text = item
        text = await self._named_mentions(text)
        if author == PERSON and user_id:
            return ThreadMessage(
                ts=ts, author=author, text=text, user_id=user_id, name=await self._names.name_of(user_id)
            )
        return ThreadMessage(ts=ts, author=author, text=text, user_id=user_id, name=bot_name)

    async def _named_mentions(self, text: str) -> str:
        """`<@U123>` becomes `@Anna`, so the model reads who was addressed."""
        ids = set(_USER_MENTION.findall(text))
        if not ids:
            return text
        names = {user_id: await self._names.name_of(user_id) for user_id in ids}
        return _USER_MENTION.sub(lambda m: f"@{names.get(m.group(1)) or m.group(1)}", text)


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    try:
        return int(seconds), int(micros.ljust(6, "0")[:6])
    except ValueError:
        return (0, 0)
