"""DMs to the admins listed in config.yml, at most once per kind of alert per interval."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.live import LiveConfig
from bot.logging_setup import scrub
from bot.slack.client import slack_error
from bot.slack.format_logic import MARKDOWN_TEXT, render

log = logging.getLogger(__name__)


class AdminAlerter:
    def __init__(self, *, client: AsyncWebClient, config: LiveConfig, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._config = config
        self._clock = clock
        self._last_sent: dict[str, float] = {}
        self._sent_keys: set[str] = set()

    async def alert(self, kind: str, text: str, *, once_key: str | None = None) -> bool:
        """Send `text` to every admin. Throttled per `kind`; with `once_key`, sent once per distinct key.

        Returns True when the alert went out (to at least one admin).
        """
        config = self._config.current
        now = self._clock()
        if once_key is not None:
            if once_key in self._sent_keys:
                return False
        else:
            last = self._last_sent.get(kind)
            if last is not None and now - last < config.slack.admin_alert_interval_seconds:
                log.info("admin alert %r throttled (already sent within the interval)", kind)
                return False
        if not config.admins:
            log.warning("admin alert %r not sent: no admins listed in config.yml (admins:)", kind)
            return False
        sent = False
        for admin in config.admins:
            try:
                opened = await self._client.conversations_open(users=admin)
                await self._client.chat_postMessage(
                    channel=opened["channel"]["id"], **render(scrub(text), into=MARKDOWN_TEXT)
                )
                sent = True
            except SlackApiError as exc:
                log.error("could not DM admin %s about %r: %s", admin, kind, slack_error(exc))
            except Exception as exc:
                log.error("could not DM admin %s about %r: %s", admin, kind, type(exc).__name__)
        if sent:
            self._last_sent[kind] = now
            if once_key is not None:
                self._sent_keys.add(once_key)
        return sent
