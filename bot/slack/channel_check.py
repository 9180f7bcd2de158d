"""Does Lukas sit in the channels config.yml has rules for? (issue 16) A rule for a channel he is not in does nothing,
so the admins are told (log + one DM per problem) at start and after each reload that changes `channels:`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.channels_schema import CHANNEL_ID
from bot.config.live import LiveConfig
from bot.config.schema import LukasConfig
from bot.slack.client import slack_error

log = logging.getLogger(__name__)

Alert = Callable[[str, str], Awaitable[bool]]


def membership_problem(*, channel_id: str, error: str | None, is_member: bool | None) -> str | None:
    """The admin-readable problem with a `channels:` entry, or None when Lukas is in that channel. Pure."""
    where = f"channels.{channel_id}"
    if error in ("channel_not_found", "not_in_channel") or (error is None and is_member is False):
        return (
            f"{where}: Lukas is not a member of this channel, so its rule does nothing; invite him there "
            "(/invite @Lukas) or remove the entry"
        )
    if error == "missing_scope":
        return f"{where}: cannot check the channel (the Slack app lacks channels:read / groups:read; reinstall it)"
    if error is not None:
        return f"{where}: cannot check the channel ({error})"
    return None


class ChannelMembershipCheck:
    def __init__(self, *, client: AsyncWebClient, config: LiveConfig, alert: Alert | None = None) -> None:
        self._client = client
        self._config = config
        self._alert = alert
        self._task: asyncio.Task[list[str]] | None = None
        self._reported: set[str] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.check(self._config.current), name="channel-check")

    def on_change(self, old: LukasConfig, new: LukasConfig) -> None:
        if set(old.channels) != set(new.channels):
            with contextlib.suppress(RuntimeError):  # no running loop (a reload from a thread): next start checks
                self._task = asyncio.get_running_loop().create_task(self.check(new), name="channel-check")

    async def check(self, config: LukasConfig) -> list[str]:
        """Check every channel ID under `channels:`; returns the problems found (each logged, alerted once)."""
        problems = []
        for channel_id in [key for key in config.channels if CHANNEL_ID.match(key)]:
            error, is_member = None, None
            try:
                response = await self._client.conversations_info(channel=channel_id)
                is_member = (response.get("channel") or {}).get("is_member")
            except SlackApiError as exc:
                error = slack_error(exc)
            except Exception as exc:
                log.info("could not check channel %s: %s", channel_id, type(exc).__name__)
                continue
            problem = membership_problem(channel_id=channel_id, error=error, is_member=is_member)
            if problem is None:
                continue
            problems.append(problem)
            log.warning("%s", problem)
            if self._alert is not None and problem not in self._reported:
                self._reported.add(problem)
                with contextlib.suppress(Exception):
                    await self._alert(f"channel_rule:{channel_id}", f":warning: config.yml {problem}.")
        return problems

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
