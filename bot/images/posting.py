"""Posting the picture to one Slack channel with files_upload_v2 (getUploadURLExternal, POST, complete)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.client import slack_error
from bot.slack.format_logic import render

log = logging.getLogger(__name__)

# Slack errors an admin has to fix, with what to do about them.
_HINTS = {
    "not_in_channel": "Lukas is not a member of this channel: invite him (/invite @Lukas) or fix images.channels",
    "channel_not_found": "no such channel, or Lukas cannot see it: check the ID in images.channels and invite Lukas",
    "is_archived": "the channel is archived: unarchive it or remove it from images.channels",
    "missing_scope": "the Slack app lacks the files:write scope: add it and reinstall the app",
    "not_allowed_token_type": "SLACK_BOT_TOKEN must be a bot token (xoxb-)",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid",
    "not_authed": "SLACK_BOT_TOKEN is missing",
    "account_inactive": "the Slack app's token was revoked",
    "restricted_action": "the workspace does not allow Lukas to post files here",
}


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    ok: bool
    file_id: str | None = None
    permalink: str | None = None
    reason: str | None = None
    admin_must_act: bool = False


async def post_image(
    slack: AsyncWebClient,
    *,
    channel: str,
    data: bytes,
    filename: str,
    title: str,
    alt_text: str,
    caption: str,
    thread_ts: str | None = None,
) -> ChannelResult:
    """Upload `data` to `channel` with the caption as the file's message. Never raises."""
    try:
        response = await slack.files_upload_v2(
            channel=channel,
            file=data,
            filename=filename,
            title=title,
            alt_txt=alt_text,
            **render(caption, into="initial_comment"),
            thread_ts=thread_ts,
        )
    except SlackApiError as exc:
        error = slack_error(exc)
        hint = _HINTS.get(error)
        reason = f"{error} ({hint})" if hint else error
        return ChannelResult(channel, False, reason=reason, admin_must_act=hint is not None)
    except SlackClientError as exc:
        return ChannelResult(channel, False, reason=f"upload failed: {str(exc)[:200]}")
    except Exception as exc:  # aiohttp/network errors: transient, retried at the next run
        return ChannelResult(channel, False, reason=f"upload failed: {type(exc).__name__}: {str(exc)[:200]}")
    files = response.get("files") or []
    info = response.get("file") or (files[0] if files else {}) or {}
    # No files.info for the permalink: that needs files:read, which would let Lukas read every file in his
    # channels. The file ID identifies the picture; a permalink is kept only when Slack returns one anyway.
    return ChannelResult(channel, True, file_id=info.get("id"), permalink=info.get("permalink"))
