"""DMs to the admins listed in config.yml, at most once per kind of alert per interval.

With a database (`notices`), each DM is first claimed in `admin_notices` (a unique key), so concurrent failures,
replicas and restarts send it once: a throttled alert once per interval (the key names the interval), a `lasting`
one once for all (the month's budget DM). The claim in this process is taken before anything is awaited, so
several messages failing at once send one DM."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config.live import LiveConfig
from bot.logging_setup import scrub
from bot.slack.client import slack_error
from bot.slack.format_logic import MARKDOWN_TEXT, render
from bot.store import guard_repo

log = logging.getLogger(__name__)
MAX_KEY = 255  # admin_notices.key


def notice_key(key: str) -> str:
    """`key` as stored in admin_notices: long ones keep a readable start and a hash of the whole."""
    if len(key) <= MAX_KEY:
        return key
    return f"{key[: MAX_KEY - 65]}#{hashlib.sha256(key.encode()).hexdigest()}"


class AdminAlerter:
    def __init__(
        self,
        *,
        client: AsyncWebClient,
        config: LiveConfig,
        clock: Callable[[], float] = time.monotonic,
        notices: AsyncEngine | None = None,
        wall_clock: Callable[[], float] = time.time,
    ):
        self._client = client
        self._config = config
        self._clock = clock
        self._notices = notices
        self._wall_clock = wall_clock
        self._last_sent: dict[str, float] = {}
        self._sent_keys: set[str] = set()

    async def alert(self, kind: str, text: str, *, once_key: str | None = None, lasting: bool = False) -> bool:
        """Send `text` to every admin. Throttled per `kind`; with `once_key`, sent once per distinct key (`lasting`:
        once across replicas and restarts, not only in this process).

        Returns True when the alert went out (to at least one admin).
        """
        config = self._config.current
        now = self._clock()
        interval = config.slack.admin_alert_interval_seconds
        if once_key is not None:
            if once_key in self._sent_keys:
                return False
            shared_key = once_key if lasting else None
        else:
            last = self._last_sent.get(kind)
            if last is not None and now - last < interval:
                log.info("admin alert %r throttled (already sent within the interval)", kind)
                return False
            shared_key = f"{kind}@{int(self._wall_clock() // interval)}" if interval else None
        if not config.admins:
            log.warning("admin alert %r not sent: no admins listed in config.yml (admins:)", kind)
            return False
        previous = self._last_sent.get(kind)
        self._hold(kind, once_key, now)  # before any await: concurrent callers see it
        if shared_key is not None and not await self._claim(notice_key(shared_key), kind):
            log.info("admin alert %r already sent (admin_notices %s)", kind, shared_key)
            return False
        sent = await self._send(kind, text, config.admins)
        if not sent:
            self._unhold(kind, once_key, previous)
            if shared_key is not None:
                await self._release(notice_key(shared_key))
        return sent

    def _hold(self, kind: str, once_key: str | None, now: float) -> None:
        self._last_sent[kind] = now
        if once_key is not None:
            self._sent_keys.add(once_key)

    def _unhold(self, kind: str, once_key: str | None, previous: float | None) -> None:
        """Nobody got it: a later alert of this kind may try again."""
        if previous is None:
            self._last_sent.pop(kind, None)
        else:
            self._last_sent[kind] = previous
        if once_key is not None:
            self._sent_keys.discard(once_key)

    async def _send(self, kind: str, text: str, admins: list[str]) -> bool:
        sent = False
        for admin in admins:
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
        return sent

    async def _claim(self, key: str, kind: str) -> bool:
        """True when this process may send the notice; with the database away, it sends (a DM too many beats none)."""
        if self._notices is None:
            return True
        try:
            async with self._notices.connect() as connection:
                return bool(await connection.run_sync(lambda c: guard_repo.claim_notice(c, key=key, kind=kind)))
        except (SQLAlchemyError, OSError) as exc:
            log.warning(
                "could not claim admin alert %r in the database (%s); sending it anyway", kind, type(exc).__name__
            )
            return True

    async def _release(self, key: str) -> None:
        if self._notices is None:
            return
        try:
            async with self._notices.connect() as connection:
                await connection.run_sync(lambda c: guard_repo.release_notice(c, key=key))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not release admin alert %s in the database (%s)", key, type(exc).__name__)
