"""Publishing Lukas's App Home tab (issue 16): on `app_home_opened` (tab "home") and after each weekly picture.

Best effort: a `views.publish` Slack rejects is logged and nothing else happens (chat never waits for it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config.live import LiveConfig
from bot.images.request_logic import REQUEST_PREFIX
from bot.images.slots_logic import month_window
from bot.slack.client import slack_error
from bot.slack.home_logic import AdminFacts, HomeFacts, Picture, home_view
from bot.store.models import GeneratedImage, LLMCall, utcnow

log = logging.getLogger(__name__)

MAX_VIEWERS = 5000  # people whose Home tab is refreshed after a picture (those who opened it since the start)


class HomeTab:
    def __init__(
        self,
        *,
        client: AsyncWebClient,
        config: LiveConfig,
        sessions: async_sessionmaker[AsyncSession],
        chain: Callable[[], tuple[str, ...]],
        breakers: Callable[[], dict[str, str]],
        next_picture: Callable[[], dt.datetime | None],
    ) -> None:
        self._client = client
        self._config = config
        self._sessions = sessions
        self._chain = chain
        self._breakers = breakers
        self._next_picture = next_picture
        self._viewers: dict[str, None] = {}  # insertion-ordered set
        self._tasks: set[asyncio.Task[None]] = set()

    async def latest_picture(self) -> Picture | None:
        """The newest weekly picture that reached Slack (pictures drawn on request are not shown)."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(GeneratedImage)
                .where(GeneratedImage.status == "succeeded", ~GeneratedImage.slot_key.startswith(REQUEST_PREFIX))
                .order_by(GeneratedImage.created_at.desc(), GeneratedImage.id.desc())
                .limit(1)
            )
        if row is None:
            return None
        return Picture(row.slack_file_id, row.slack_permalink, row.theme, row.created_at)

    async def _admin_facts(self) -> AdminFacts:
        config = self._config.current
        start, end = month_window(now=utcnow(), timezone=config.images.schedule.timezone)
        async with self._sessions() as session:
            chat = await session.scalar(
                select(func.coalesce(func.sum(LLMCall.cost_usd), 0.0)).where(
                    LLMCall.created_at >= start, LLMCall.created_at < end
                )
            )
            images = await session.scalar(
                select(func.coalesce(func.sum(GeneratedImage.cost_usd), 0.0)).where(
                    GeneratedImage.created_at >= start, GeneratedImage.created_at < end
                )
            )
        return AdminFacts(
            chain=self._chain(),
            breakers=self._breakers(),
            chat_spent_usd=float(chat or 0.0),
            chat_budget_usd=config.usage.chat_monthly_budget_usd,
            image_spent_usd=float(images or 0.0),
            image_budget_usd=config.images.monthly_budget_usd,
            next_picture=self._next_picture(),
            pictures_enabled=config.images.enabled,
        )

    async def view_for(self, user_id: str) -> dict[str, Any]:
        config = self._config.current
        facts = HomeFacts(
            name=config.persona.name,
            picture=await self.latest_picture(),
            prompts=[(p.title, p.message) for p in config.assistant.suggested_prompts],
            pictures_on_request=config.pictures.enabled,
            admin=await self._admin_facts() if user_id in config.admins else None,
        )
        return home_view(facts)

    async def publish(self, user_id: str) -> bool:
        """Publish the Home tab for one person. Never raises; False when it did not reach Slack."""
        self._viewers[user_id] = None
        while len(self._viewers) > MAX_VIEWERS:
            self._viewers.pop(next(iter(self._viewers)))
        try:
            view = await self.view_for(user_id)
            await self._client.views_publish(user_id=user_id, view=view)
            return True
        except SlackApiError as exc:
            log.warning(
                "views.publish for %s was rejected (%s); the Home tab stays as it was", user_id, slack_error(exc)
            )
        except Exception as exc:
            log.warning("could not publish the Home tab for %s: %s: %s", user_id, type(exc).__name__, str(exc)[:200])
        return False

    async def refresh_all(self, *_args: Any) -> int:
        """After a weekly picture: republish for everyone who opened the Home tab since the start."""
        published = 0
        for user_id in list(self._viewers):
            published += await self.publish(user_id)
        if published:
            log.info("Home tab refreshed for %d people after the new picture", published)
        return published

    def publish_later(self, user_id: str) -> None:
        task = asyncio.create_task(self._publish_quietly(user_id), name="home-tab")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_quietly(self, user_id: str) -> None:
        await self.publish(user_id)

    async def drain(self, timeout: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)


def register_home_listener(app: AsyncApp, home: HomeTab) -> None:
    """`app_home_opened` with tab "home". Register before the Messages-tab listener (bot.slack.assistant)."""

    async def is_home_tab(event: dict[str, Any]) -> bool:
        return isinstance(event, dict) and event.get("tab") == "home"

    @app.event("app_home_opened", matchers=[is_home_tab])
    async def on_home_opened(event: dict[str, Any]) -> None:
        user_id = event.get("user")
        if isinstance(user_id, str) and user_id:
            home.publish_later(user_id)  # the ack does not wait for the database or Slack
