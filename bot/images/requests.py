"""Pictures drawn on request (issue 16): "@Lukas draw yourself at the beach" and `/lukas draw <idea>`.

The same pipeline as the weekly picture: prompt from images.base_prompt + the idea + the house style, the
image_prompt contracts, retry.images, the price table and monthly budget, one GeneratedImage row per request (its
slot_key is the request key, so a redelivered event never buys twice). Claiming happens before the ack (one
transaction: request key, daily quota, budget; see request_repo); the picture is made after it and uploaded into
the thread with a short caption. Every failure ends as an in-character line in the thread and a recorded row.

The idea is the person's words: logs carry the request key and the idea's length, never the idea, and errors have
it cut out. It is erased from the row with the person's messages (bot.store.privacy_repo); a request deleted in
Slack before it is drawn is dropped without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.chat.pictures_logic import picture_subject
from bot.config.live import LiveConfig
from bot.errors import ImageGenerationError, SlackDeliveryError
from bot.images import repo
from bot.images.cost_logic import image_cost, missing_price_reason, price_for
from bot.images.delivery import ImageDelivery
from bot.images.generation import ImageAPI, Sleep, image_bytes, request_image
from bot.images.request_logic import quota_day, quota_month, request_key, request_prompt, without_idea
from bot.images.request_repo import CLAIMED, DELETED, DELETED_REASON, DUPLICATE, claim_request, unless_erased
from bot.images.retry_logic import short
from bot.images.slots_logic import month_window
from bot.llm.fallbacks import pick_line
from bot.slack.replies import post_reply
from bot.store.models import utcnow

log = logging.getLogger(__name__)

CheckPrompt = Callable[[str, Any], Awaitable[Any]]  # WeeklyImageJob.check_prompt: (prompt, config) -> _PromptCheck


class PictureDesk:
    def __init__(
        self,
        *,
        config: LiveConfig,
        sessions: async_sessionmaker[AsyncSession],
        slack: AsyncWebClient,
        image_client: ImageAPI,
        check_prompt: CheckPrompt,
        delivery: ImageDelivery,
        clock: Callable[[], dt.datetime] = utcnow,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._sessions = sessions
        self._slack = slack
        self._images = image_client
        self._check_prompt = check_prompt
        self._delivery = delivery  # keeps the paid bytes and uploads them (retried with the weekly pictures)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()

    # ----- entry points (before the ack: they only claim and schedule)
    async def accept(self, *, user_id: str, channel_id: str, ts: str, thread_ts: str | None, idea: str) -> str:
        """A picture request from a message. Returns what happened (for the log): claimed, duplicate, over_quota,
        over_budget or failed. Raises only when the database is down (Slack then redelivers the event)."""
        return await self._take(
            key=request_key(channel_id=channel_id, ts=ts),
            user_id=user_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            idea=idea,
            message=(channel_id, ts),
        )

    async def draw_command(self, *, user_id: str, channel_id: str, trigger: str, idea: str) -> str:
        """`/lukas draw <idea>`: the picture goes to the channel the command was typed in."""
        return await self._take(
            key=request_key(channel_id=channel_id, ts=trigger), user_id=user_id, channel_id=channel_id,
            thread_ts=None, idea=idea,
        )  # fmt: skip

    async def _take(
        self,
        *,
        key: str,
        user_id: str,
        channel_id: str,
        thread_ts: str | None,
        idea: str,
        message: tuple[str, str] | None = None,
    ) -> str:
        config = self._config.current
        images, pictures = config.images, config.pictures
        subject = picture_subject(idea)
        prompt = request_prompt(images=images, subject=subject)
        now = self._now()
        common = {"prompt": prompt, "model": images.model, "size": images.size, "quality": images.quality}
        price = price_for(config=images, model=images.model, size=images.size, quality=images.quality)
        if price is None:
            reason = missing_price_reason(config=images, model=images.model, size=images.size, quality=images.quality)
            log.error("picture request %s: not made: %s", key, reason)
            row = await repo.claim(self._sessions, slot_key=key, now=now, requested_by=user_id, **common)
            if row is None:
                return DUPLICATE
            await repo.change(self._sessions, row.id, now=now, status="failed", error=reason, thread_ts=thread_ts)
            self._spawn(self._say(channel_id, thread_ts, config.fallbacks.lines), name=f"picture-{key}")
            return "failed"
        start, end = month_window(now=now, timezone=images.schedule.timezone)
        claim = await claim_request(
            self._sessions,
            key=key,
            user_id=user_id,
            quota=pictures.daily_quota_per_person,
            day=quota_day(now=now, timezone=images.schedule.timezone),
            month=quota_month(now=now, timezone=images.schedule.timezone),
            month_start=start,
            month_end=end,
            price_usd=price,
            budget_usd=images.monthly_budget_usd,
            now=now,
            message=message,
            thread_ts=thread_ts,
            channel_id=channel_id,
            **common,
        )
        if claim.outcome == DUPLICATE:
            log.info("picture request %s: already taken (a redelivery); nothing bought", key)
            return DUPLICATE
        if claim.outcome == DELETED:
            log.info("picture request %s: not drawn: %s", key, claim.reason)
            return DELETED
        if claim.outcome != CLAIMED:
            log.warning("picture request %s from %s: skipped: %s", key, user_id, claim.reason)
            self._spawn(self._say(channel_id, thread_ts, pictures.resting_lines), name=f"picture-{key}")
            return claim.outcome
        log.info("picture request %s from %s: claimed (an idea of %d characters)", key, user_id, len(subject))
        assert claim.row_id is not None
        self._spawn(
            self._produce(claim.row_id, key=key, channel_id=channel_id, thread_ts=thread_ts, subject=subject),
            name=f"picture-{key}",
        )
        return CLAIMED

    # ----- after the ack
    async def _produce(self, row_id: int, *, key: str, channel_id: str, thread_ts: str | None, subject: str) -> None:
        config = self._config.current
        images = config.images
        try:
            row = await repo.by_id(self._sessions, row_id)
            assert row is not None
            if row.erased_at is not None:  # the asking message was deleted in Slack after the claim
                log.info("picture request %s: not drawn: %s", key, DELETED_REASON)
                await self._change(row_id, status="skipped", error=DELETED_REASON, cost_usd=0.0)
                return
            check = await self._check_prompt(row.prompt, config)
            if not check.ok:
                reason = without_idea(check.reason, subject=subject)
                log.warning("picture request %s: %s: %s", key, check.status, reason)
                await self._change(row_id, status=check.status, error=reason, cost_usd=0.0)
                await self._say(channel_id, thread_ts, config.pictures.refusal_lines)
                return
            try:
                raw, attempts = await request_image(
                    self._images, model=images.model, prompt=check.prompt, size=images.size, quality=images.quality,
                    timeout=images.request_timeout_seconds, policy=config.retry.images, sleep=self._sleep,
                    rng=self._rng,
                )  # fmt: skip
            except ImageGenerationError as exc:
                error = without_idea(str(exc), subject=subject)
                log.error("picture request %s: failed after %d attempt(s): %s", key, exc.attempts, error)
                await self._change(row_id, status="failed", error=error, attempts=exc.attempts, cost_usd=0.0)
                await self._say(channel_id, thread_ts, config.fallbacks.lines)
                return
            cost = image_cost(
                config=images, model=images.model, size=images.size, quality=images.quality, usage=raw.usage
            )
            cost_usd = cost.usd if cost is not None else row.cost_usd
            data, kind, _source = await image_bytes(self._images, raw=raw, config=images, sleep=self._sleep)
            # Kept (in the database) before the upload: a failed upload leaves it for the retries, not lost.
            row, kept = await self._delivery.keep(
                row, data=data, kind=kind, images=images, attempts=attempts, cost_usd=cost_usd,
                revised_prompt=unless_erased(raw.revised_prompt),
            )  # fmt: skip
            await self._delivery.deliver_request(row, data=data, extension=kind.extension, kept=kept, subject=subject)
        except ImageGenerationError as exc:  # the bytes of a paid picture could not be read
            error = short(without_idea(str(exc), subject=subject), 500)
            log.error("picture request %s: failed: %s", key, error)
            await self._change(row_id, status="failed", error=error)
            await self._say(channel_id, thread_ts, config.fallbacks.lines)
        except Exception as exc:
            log.exception("picture request %s: failed unexpectedly", key)
            await self._change(row_id, status="failed", error=f"internal error: {type(exc).__name__}")
            await self._say(channel_id, thread_ts, config.fallbacks.lines)

    async def _change(self, row_id: int, **values: Any) -> None:
        try:
            await repo.change(self._sessions, row_id, now=self._now(), **values)
        except Exception as exc:
            log.error("picture request: could not record the outcome of row %s: %s", row_id, short(exc, 200))

    async def _say(self, channel_id: str, thread_ts: str | None, lines: list[str]) -> None:
        """One in-character line in the thread (never raises)."""
        text = pick_line(lines=lines, last=None, rng=self._rng)
        try:
            await post_reply(
                self._slack, channel=channel_id, thread_ts=thread_ts, text=text,
                max_chars=self._config.current.slack.max_message_chars,
            )  # fmt: skip
        except SlackDeliveryError as exc:
            log.error("picture request: could not post the line to %s: %s", channel_id, exc)

    # ----- background work
    def _spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float = 10.0) -> None:
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), timeout=timeout)

    def _now(self) -> dt.datetime:
        now = self._clock()
        return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)
