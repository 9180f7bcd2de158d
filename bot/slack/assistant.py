"""Slack's AI-app surface (issue 8): a thinking status while the model works, suggested prompts when a thread starts.

The status uses Bolt's `set_status` (assistant.threads.setStatus), which needs a thread: in a DM's main timeline
it is set on the person's message, as Bolt itself does. Everything here is best effort: a failure is logged
(INFO the first time per error, DEBUG after) and never delays or blocks a reply.

Suggested prompts: on `app_home_opened` with tab == "messages" (the agent view, apps created since 2026-06; no
thread_ts) and on `assistant_thread_started` (the legacy assistant view).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.set_status.async_set_status import AsyncSetStatus
from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import AsyncSetSuggestedPrompts
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.live import LiveConfig
from bot.config.providers_schema import AssistantConfig
from bot.slack.client import slack_error

log = logging.getLogger(__name__)

_CLEAR_WAIT_SECONDS = 2.0
_reported: set[str] = set()  # errors already logged at INFO
_background: set[asyncio.Task[None]] = set()


def _quietly_log(what: str, exc: BaseException) -> None:
    error = slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
    key = f"{what}:{error}"
    level = logging.DEBUG if key in _reported else logging.INFO
    _reported.add(key)
    log.log(level, "%s failed (%s); carrying on without it", what, error)


class ThinkingStatus:
    """Shows "Lukas is thinking…" (with bear-flavoured loading messages) until the reply, which clears it in Slack:
    one status call per answer. Only a status that was not set before the reply showed (its call was still in
    flight), or an answer that posted nothing, needs a second call to clear it."""

    def __init__(self, client: AsyncWebClient, *, channel_id: str, thread_ts: str, settings: AssistantConfig) -> None:
        self._set_status = AsyncSetStatus(client=client, channel_id=channel_id, thread_ts=thread_ts)
        self._settings = settings
        self._task: asyncio.Task[bool] | None = None
        self._set_before_reply = False

    def start(self) -> None:
        """Set the status in the background: the model call does not wait for Slack."""
        if self._task is None:
            self._task = asyncio.create_task(self._set(), name="thinking-status")

    async def _set(self) -> bool:
        try:
            await self._set_status(
                status=self._settings.status, loading_messages=list(self._settings.loading_messages) or None
            )
            return True
        except Exception as exc:
            _quietly_log("assistant.threads.setStatus", exc)
            return False

    def replying(self) -> None:
        self._set_before_reply = self._task is not None and self._task.done()

    async def clear(self, *, replied: bool) -> None:
        """After the reply or fallback: Slack cleared a status set before the reply showed. Otherwise clear it,
        waiting briefly for a set still in flight."""
        if self._task is None:
            return
        task, self._task = self._task, None
        if replied and self._set_before_reply:
            return
        try:
            was_set = await asyncio.wait_for(task, timeout=_CLEAR_WAIT_SECONDS)
        except TimeoutError:
            return  # Slack clears a status by itself after two minutes
        if not was_set:
            return
        try:
            await self._set_status(status="")
        except Exception as exc:
            _quietly_log("clearing the thinking status", exc)


def register_assistant_listeners(app: AsyncApp, config: LiveConfig) -> None:
    """Suggested prompts for new AI-app threads. Register before any catch-all event listener."""

    async def offer(setter: AsyncSetSuggestedPrompts, thread_ts: str | None) -> None:
        settings = config.current.assistant
        prompts = [{"title": p.title, "message": p.message} for p in settings.suggested_prompts]
        try:
            await setter(prompts=prompts, title=settings.prompts_title, thread_ts=thread_ts)
        except Exception as exc:
            _quietly_log("assistant.threads.setSuggestedPrompts", exc)

    def in_background(work: Any) -> None:
        task = asyncio.create_task(work)  # the ack does not wait for Slack
        _background.add(task)
        task.add_done_callback(_background.discard)

    @app.event("app_home_opened")
    async def on_app_home_opened(
        event: dict[str, Any], client: AsyncWebClient, set_suggested_prompts: AsyncSetSuggestedPrompts | None = None
    ) -> None:
        channel = event.get("channel")
        if event.get("tab") != "messages" or not channel or not config.current.assistant.suggested_prompts:
            return
        in_background(offer(set_suggested_prompts or AsyncSetSuggestedPrompts(client, channel), None))

    @app.event("assistant_thread_started")
    async def on_assistant_thread_started(event: dict[str, Any], client: AsyncWebClient) -> None:
        thread = event.get("assistant_thread") or {}
        channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if not channel or not thread_ts or not config.current.assistant.suggested_prompts:
            return
        in_background(offer(AsyncSetSuggestedPrompts(client, channel, thread_ts), thread_ts))


async def drain_background(timeout: float = 2.0) -> None:
    """Let suggested-prompt calls in flight finish (at shutdown, and in tests)."""
    if _background:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*_background, return_exceptions=True), timeout=timeout)
