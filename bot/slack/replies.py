"""Talking back to Slack: post (split when long), and people's display names (cached)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import SlackDeliveryError
from bot.slack.client import slack_error
from bot.slack.format_logic import MARKDOWN_TEXT, MARKDOWN_TEXT_LIMIT, render, split_message
from bot.slack.sanitise_logic import sanitise_outgoing

log = logging.getLogger(__name__)


async def post_reply(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str | None,
    text: str,
    max_chars: int,
    allowed_user_ids: frozenset[str] = frozenset(),
) -> list[str]:
    """Post `text` (Markdown) in the channel (or thread); returns the ts of each part. slack-sdk retries
    `ratelimited`. Long texts go in several messages, split where no code fence or link breaks. Sanitised before
    the split (mentions of anyone outside `allowed_user_ids` dropped, special mentions neutralised), so the split
    sees the text as it will show."""
    text = sanitise_outgoing(text, allowed_user_ids=allowed_user_ids)
    timestamps: list[str] = []
    parts = split_message(text, limit=min(max_chars, MARKDOWN_TEXT_LIMIT))
    if len(parts) > 1:
        log.info("the reply is %d characters long; posting it in %d messages", len(text), len(parts))
    index = 0
    while index < len(parts):
        part = parts[index]
        try:
            response = await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                **render(part, into=MARKDOWN_TEXT, allowed_user_ids=allowed_user_ids),
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            if error == "msg_too_long" and len(part) > 500:
                parts[index : index + 1] = split_message(part, limit=max(len(part) // 2, 500))
                continue
            raise SlackDeliveryError(f"chat.postMessage to {channel} failed: {error}") from None
        except Exception as exc:
            raise SlackDeliveryError(f"chat.postMessage to {channel} failed: {type(exc).__name__}") from None
        timestamps.append(str(response.get("ts")))
        index += 1
    return timestamps


class UserNames:
    """Display names from users.info, cached so a busy thread costs one lookup per person per hour."""

    def __init__(
        self, client: AsyncWebClient, *, ttl_seconds: Callable[[], float], clock: Callable[[], float] = time.monotonic
    ):
        self._client = client
        self._ttl = ttl_seconds  # read on every lookup, so a config reload applies at once
        self._clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def name_of(self, user_id: str) -> str | None:
        now = self._clock()
        cached = self._cache.get(user_id)
        if cached is not None and now - cached[0] < self._ttl():
            return cached[1]
        name: str | None = None
        try:
            response = await self._client.users_info(user=user_id)
            user = response.get("user") or {}
            profile = user.get("profile") or {}
            name = (
                profile.get("display_name")
                or profile.get("real_name")
                or user.get("real_name")
                or user.get("name")
                or None
            )
        except SlackApiError as exc:
            log.warning(
                "users.info for %s failed: %s (continuing without a name)",
                user_id,
                slack_error(exc),
            )
        except Exception as exc:
            log.warning("users.info for %s failed: %s (continuing without a name)", user_id, type(exc).__name__)
            return cached[1] if cached else None
        self._cache[user_id] = (now, name)
        return name
