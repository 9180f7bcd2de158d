"""Talking back to Slack: post (split when long), and people's display names (cached)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.reply_logic import join_parts
from bot.errors import LeaseLost, PartlyDelivered, SlackDeliveryError
from bot.slack.client import slack_error
from bot.slack.format_logic import MARKDOWN_TEXT, MARKDOWN_TEXT_LIMIT, render, split_message
from bot.slack.sanitise_logic import sanitise_outgoing

log = logging.getLogger(__name__)


REPLY_EVENT = "lukas_reply"
_UNKNOWN_OUTCOME_ATTEMPTS = 3


@dataclass(frozen=True)
class FoundReply:
    ts: str
    text: str
    part: int


def reply_metadata(*, question_id: int, part: int) -> dict[str, Any]:
    """Message metadata naming the question a reply answers and which of its messages this is (part 0 first; a
    streamed reply's own message is part 0): how Lukas finds its own reply, and each part, after a lost answer."""
    return {"event_type": REPLY_EVENT, "event_payload": {"question_id": str(question_id), "part": part}}


def _outcome_unknown(exc: BaseException) -> bool:
    """A timeout, a dropped connection or a 5xx: the post may or may not have happened."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200) or 200
        return status >= 500
    return isinstance(exc, TimeoutError | aiohttp.ClientError | ConnectionError | OSError)


async def find_own_reply(
    client: AsyncWebClient, *, channel: str, thread_ts: str | None, after_ts: str | None, question_id: int
) -> list[FoundReply]:
    """Lukas's replies to `question_id` already in Slack (found by their metadata), oldest first."""
    params: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": 200}
    if after_ts:
        params["oldest"] = after_ts
    if thread_ts:
        response = await client.conversations_replies(ts=thread_ts, **params)
    else:
        response = await client.conversations_history(**params)
    found = []
    for message in response.get("messages") or []:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") == REPLY_EVENT and str(payload.get("question_id")) == str(question_id):
            part = int(payload.get("part", 0))
            found.append(FoundReply(str(message.get("ts")), str(message.get("text") or ""), part))
    return sorted(found, key=lambda reply: reply.part)


def reply_parts(text: str, *, max_chars: int, allowed_user_ids: frozenset[str] = frozenset()) -> list[str]:
    """The messages a reply is posted as. Sanitised before the split (mentions of anyone outside
    `allowed_user_ids` dropped, special mentions neutralised), so the split sees the text as it will show; split
    where no code fence or link breaks. The same text always gives the same parts (a take-over relies on it)."""
    text = sanitise_outgoing(text, allowed_user_ids=allowed_user_ids)
    return split_message(text, limit=min(max_chars, MARKDOWN_TEXT_LIMIT))


async def post_reply(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str | None,
    text: str,
    max_chars: int,
    question_id: int | None = None,
    question_ts: str | None = None,
    still_ours: Callable[[], bool] | None = None,
    allowed_user_ids: frozenset[str] = frozenset(),
    posted: Mapping[int, str] | None = None,
) -> list[str]:
    """Post `text` (Markdown) in the channel (or thread), in several messages when long (`reply_parts`); returns
    the ts of each part. `posted` (part number -> ts) names parts already in Slack: they are not posted again."""
    parts = reply_parts(text, max_chars=max_chars, allowed_user_ids=allowed_user_ids)
    if len(parts) > 1:
        log.info("the reply is %d characters long; posting it in %d messages", len(text), len(parts))
    return await post_parts(
        client,
        channel=channel,
        thread_ts=thread_ts,
        parts=parts,
        posted=posted or {},
        question_id=question_id,
        question_ts=question_ts,
        still_ours=still_ours,
        allowed_user_ids=allowed_user_ids,
    )


async def post_parts(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str | None,
    parts: list[str],
    posted: Mapping[int, str],
    question_id: int | None,
    question_ts: str | None,
    still_ours: Callable[[], bool] | None = None,
    allowed_user_ids: frozenset[str] = frozenset(),
) -> list[str]:
    """Post each part not in `posted` (part number -> ts), numbered by its place in `parts` in its metadata;
    returns every part's ts. slack-sdk retries `ratelimited` (Retry-After capped). An unknown outcome is checked in
    Slack (by the part's metadata) before posting again; `still_ours` is asked before every attempt: a writer that
    lost its lease stops (LeaseLost). Slack refusing a part after earlier ones landed raises PartlyDelivered."""
    parts = list(parts)
    timestamps: list[str] = []
    index = 0
    unknown = 0
    while index < len(parts):
        if index in posted:
            timestamps.append(posted[index])
            index += 1
            continue
        part = parts[index]
        if still_ours is not None and not still_ours():
            raise LeaseLost(f"lease on message {question_id} lost before posting part {index + 1}")
        metadata = reply_metadata(question_id=question_id, part=index) if question_id is not None else None
        try:
            response = await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                metadata=metadata,
                **render(part, into=MARKDOWN_TEXT, allowed_user_ids=allowed_user_ids),
            )
        except Exception as exc:
            if question_id is not None and _outcome_unknown(exc):
                unknown += 1
                landed = await _landed(client, channel, thread_ts, question_ts, question_id, index)
                if landed is not None:
                    log.warning("chat.postMessage outcome was unknown (%s); the reply is in Slack", _why(exc))
                    timestamps.append(landed)
                    index += 1
                    continue
                if unknown < _UNKNOWN_OUTCOME_ATTEMPTS:
                    log.warning("chat.postMessage outcome unknown (%s), reply not in Slack: posting again", _why(exc))
                    continue
            if isinstance(exc, SlackApiError) and slack_error(exc) == "msg_too_long" and len(part) > 500:
                parts[index : index + 1] = split_message(part, limit=max(len(part) // 2, 500))
                continue
            problem = f"chat.postMessage to {channel} failed: {_why(exc)}"
            if timestamps:
                raise PartlyDelivered(
                    f"{problem} (part {index + 1} of {len(parts)}; the first {index} are in Slack)",
                    timestamps=timestamps,
                    text=join_parts(parts[:index]),
                ) from None
            raise SlackDeliveryError(problem) from None
        timestamps.append(str(response.get("ts")))
        index += 1
    return timestamps


def _why(exc: BaseException) -> str:
    return slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__


async def _landed(
    client: AsyncWebClient, channel: str, thread_ts: str | None, question_ts: str | None, question_id: int, part: int
) -> str | None:
    try:
        found = await find_own_reply(
            client, channel=channel, thread_ts=thread_ts, after_ts=question_ts, question_id=question_id
        )
    except Exception as exc:
        raise SlackDeliveryError(
            f"chat.postMessage to {channel}: outcome unknown and the reply could not be looked up ({_why(exc)}); "
            "not posting again"
        ) from None
    return next((reply.ts for reply in found if reply.part == part), None)


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
