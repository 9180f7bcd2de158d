"""The weekly bear picture, end to end: claim the slot, plan, check, budget, generate, keep, post.

Keeping the bytes (in the database) and posting them, now or on a later retry, live in bot.images.delivery.

Every public method catches its own failures, records them on the GeneratedImage row, logs one
admin-readable line (loggers under `bot.images`) and returns: the picture never blocks chat.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config.live import LiveConfig
from bot.config.schema import LukasConfig
from bot.errors import ImageGenerationError
from bot.images import budget_repo, repo
from bot.images.caption_logic import template_caption
from bot.images.cost_logic import budget_reason, image_cost, missing_price_reason, price_for
from bot.images.delivery import ImageDelivery, safe_change
from bot.images.generation import ImageAPI, Sleep, image_bytes, request_image
from bot.images.retry_logic import short
from bot.images.slots_logic import (
    SCHEDULER_SLACK,
    due_slot,
    latest_slot,
    local_day,
    manual_key,
    month_window,
    slot_key,
)
from bot.images.themes_logic import ImagePlan, basic_prompt_problems, plan_for_date
from bot.store.models import GeneratedImage, utcnow

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
CaptionWriter = Callable[[ImagePlan], Awaitable[str | None]]
AlertAdmins = Callable[[str, str], Awaitable[bool]]
ContractsProvider = Callable[[], Any]

RUN_STALE = dt.timedelta(hours=1)  # a 'pending' row without an image older than this was interrupted
CAPTION_TIMEOUT_SECONDS = 30.0
CAPTION_MAX_CHARS = 2000


@dataclass(frozen=True)
class _PromptCheck:
    ok: bool
    prompt: str
    reason: str = ""
    status: str = "rejected"  # when not ok: rejected (a violation) or failed (the checks could not run)


class WeeklyImageJob:
    def __init__(
        self,
        *,
        config: LiveConfig,
        sessions: async_sessionmaker[AsyncSession],
        slack: AsyncWebClient,
        image_client: ImageAPI,
        contracts: ContractsProvider | None = None,
        caption_writer: CaptionWriter | None = None,
        alert_admins: AlertAdmins | None = None,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        data_dir: Path | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self._config = config
        self._progress = progress or (lambda _line: None)  # `lukas image --now` prints each step as it goes
        self._sessions = sessions
        self._slack = slack
        self._images = image_client
        self._contracts = contracts
        self._caption_writer = caption_writer
        self._alert_admins = alert_admins
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.on_picture: Callable[[GeneratedImage], Awaitable[object]] | None = None  # e.g. refresh the App Home
        self._delivery = ImageDelivery(
            config=config,
            sessions=sessions,
            slack=slack,
            caption=self._caption,
            alert=self._alert,
            now=self._now,
            data_dir=data_dir,
        )

    @property
    def image_client(self) -> ImageAPI:
        return self._images

    @property
    def delivery(self) -> ImageDelivery:
        """Keeps and posts pictures; pictures drawn on request (bot.images.requests) go through it too."""
        return self._delivery

    # ----- public entry points

    async def run_slot(self, slot: dt.datetime) -> GeneratedImage:
        """The run for one cron slot. Returns the slot's row; when another run or replica already claimed the
        slot, that row is returned untouched (nothing is generated or posted twice)."""
        row, _claimed = await self._run(key=slot_key(slot), moment=slot, manual=False)
        return row

    async def run_now(self) -> GeneratedImage:
        """Generate and post right away (admin command). Budget and prompt checks apply."""
        now = self._now()
        row, _claimed = await self._run(key=manual_key(now), moment=now, manual=True)
        return row

    async def run_due(self) -> GeneratedImage | None:
        """What the scheduler calls at each cron time: run the slot that just came due (None if disabled)."""
        images = self._config.current.images
        if not images.enabled:
            log.info("weekly image: images.enabled is false; nothing to do")
            return None
        now = self._now()
        lookback = dt.timedelta(minutes=images.schedule.grace_minutes) + SCHEDULER_SLACK
        slot = latest_slot(schedule=images.schedule, now=now, lookback=lookback)
        if slot is None:
            log.warning("weekly image: the scheduler fired at %s but no cron slot is due; nothing to do", now)
            return None
        return await self.run_slot(slot)

    async def catch_up(self, now: dt.datetime | None = None) -> GeneratedImage | None:
        """Call once at startup. Marks runs interrupted by a crash as failed, posts the newest missed slot if it
        is within images.schedule.grace_minutes and nobody ran it (only that one, however many were missed), and
        retries kept uploads. Returns the row it ran, else None."""
        now = now or self._now()
        try:
            interrupted = await repo.fail_interrupted(self._sessions, stale_before=now - RUN_STALE, now=now)
            if interrupted:
                log.warning("weekly image: %d run(s) were interrupted by a stop and are now marked failed", interrupted)
        except Exception as exc:
            log.error("weekly image: could not check for interrupted runs: %s", short(exc, 200))
        images = self._config.current.images
        slot = due_slot(schedule=images.schedule, now=now) if images.enabled else None
        if slot is None:
            await self.retry_uploads()
            return None
        row, claimed = await self._run(key=slot_key(slot), moment=slot, manual=False, now=now)
        if claimed:
            log.info("weekly image: caught up on the missed slot %s", slot_key(slot))
        return row if claimed else None

    async def retry_uploads(self) -> int:
        """Post kept images that some configured channel does not have yet. Returns how many are now fully posted."""
        return await self._delivery.retry_uploads()

    def plan(self, *, day: dt.date, previous_theme: str | None) -> ImagePlan:
        return plan_for_date(day=day, config=self._config.current.images, previous_theme=previous_theme)

    # ----- one run

    def _now(self) -> dt.datetime:
        now = self._clock()
        return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)

    async def _run(
        self, *, key: str, moment: dt.datetime, manual: bool, now: dt.datetime | None = None
    ) -> tuple[GeneratedImage, bool]:
        now = now or self._now()
        config = self._config.current
        images = config.images
        await self.retry_uploads()
        try:
            previous = await repo.last_theme(self._sessions, before=now)
            day = local_day(moment=moment, timezone=images.schedule.timezone)
            plan = plan_for_date(day=day, config=images, previous_theme=previous)
            row = await repo.claim(
                self._sessions,
                slot_key=key,
                now=now,
                prompt=plan.prompt,
                theme=plan.theme,
                occasion=plan.occasion,
                model=images.model,
                size=images.size,
                quality=images.quality,
            )
        except Exception as exc:
            log.error("weekly image %s: not run, the database is unavailable: %s", key, short(exc, 300))
            return GeneratedImage(
                slot_key=key, status="failed", error=f"database unavailable: {short(exc, 500)}"
            ), False
        if row is None:
            log.info("weekly image %s: already claimed by another run or replica; not generating again", key)
            existing = await self._safe_by_key(key)
            return existing or GeneratedImage(slot_key=key, status="pending"), False
        try:
            row = await self._produce(row, plan=plan, config=config, manual=manual, now=now)
        except Exception as exc:
            log.exception("weekly image %s: failed unexpectedly", key)
            error = f"internal error: {type(exc).__name__}"
            row = await safe_change(self._sessions, row.id, now=self._now, status="failed", error=error) or row
        if row.status == "succeeded" and self.on_picture is not None:
            try:
                await self.on_picture(row)
            except Exception:
                log.exception("weekly image %s: the after-picture hook failed", key)
        return row, True

    async def _produce(
        self, row: GeneratedImage, *, plan: ImagePlan, config: LukasConfig, manual: bool, now: dt.datetime
    ) -> GeneratedImage:
        images = config.images
        key = row.slot_key
        if not manual and not images.enabled:
            return await self._skip(row, "images.enabled is false")
        if not images.channels:
            return await self._skip(row, "no channels configured (images.channels); nothing was bought")

        self._progress(f"theme:     {plan.theme or '-'}" + (f" (occasion: {plan.occasion})" if plan.occasion else ""))
        check = await self.check_prompt(plan.prompt, config)
        self._progress(f"prompt:    {check.prompt}")
        if not check.ok:
            log.warning("weekly image %s: %s: %s", key, check.status, check.reason)
            return await repo.change(self._sessions, row.id, now=self._now(), status=check.status, error=check.reason)
        if check.prompt != plan.prompt:
            row = await repo.change(self._sessions, row.id, now=self._now(), prompt=check.prompt)

        price = price_for(config=images, model=images.model, size=images.size, quality=images.quality)
        if price is None:
            reason = missing_price_reason(config=images, model=images.model, size=images.size, quality=images.quality)
            log.error("weekly image %s: failed: %s", key, reason)
            await self._alert("image_config", f"The weekly bear picture was not made: {reason}.")
            return await repo.change(self._sessions, row.id, now=self._now(), status="failed", error=reason)

        start, end = month_window(now=now, timezone=images.schedule.timezone)
        month = f"{local_day(moment=now, timezone=images.schedule.timezone):%Y-%m}"
        # Reserve the price atomically: a run starting meanwhile sees it, and two runs never both pass the budget.
        if not await budget_repo.reserve(
            self._sessions, month=month, start=start, end=end, amount=price, budget=images.monthly_budget_usd
        ):
            spent = await budget_repo.reserved(self._sessions, month=month)
            return await self._skip(
                row, budget_reason(spent_usd=spent, price_usd=price, budget_usd=images.monthly_budget_usd)
            )
        row = await repo.change(self._sessions, row.id, now=self._now(), cost_usd=price)

        timeout = images.request_timeout_seconds
        self._progress(f"generating… {images.model} {images.size} {images.quality} (up to {timeout:.0f} s an attempt)")
        try:
            raw, attempts = await request_image(
                self._images,
                model=images.model,
                prompt=check.prompt,
                size=images.size,
                quality=images.quality,
                timeout=images.request_timeout_seconds,
                policy=config.retry.images,
                sleep=self._sleep,
                rng=self._rng,
            )
        except ImageGenerationError as exc:
            log.error("weekly image %s: failed after %d attempt(s): %s", key, exc.attempts, exc)
            if exc.alert:
                await self._alert(f"image_{exc.kind}", f"The weekly bear picture failed: {exc}")
            await budget_repo.adjust(self._sessions, month=month, delta=-price)  # nothing was bought
            return await repo.change(
                self._sessions,
                row.id,
                now=self._now(),
                status="failed",
                error=str(exc),
                attempts=exc.attempts,
                cost_usd=0.0,
            )

        cost = image_cost(config=images, model=images.model, size=images.size, quality=images.quality, usage=raw.usage)
        cost_usd = cost.usd if cost is not None else price
        source = cost.source if cost is not None else "price table"
        await budget_repo.adjust(self._sessions, month=month, delta=cost_usd - price)  # settle the real cost
        try:
            data, kind, fetched_from = await image_bytes(self._images, raw=raw, config=images, sleep=self._sleep)
        except ImageGenerationError as exc:
            reason = f"{exc} (the image was generated and paid for: ${cost_usd:.3f})"
            log.error("weekly image %s: failed: %s", key, reason)
            return await repo.change(
                self._sessions,
                row.id,
                now=self._now(),
                status="failed",
                error=reason,
                attempts=attempts,
                cost_usd=cost_usd,
                revised_prompt=raw.revised_prompt,
            )
        log.info(
            "weekly image %s: generated %s %s %s (%s, %d bytes) in %d attempt(s); cost $%.4f (%s)",
            key,
            images.model,
            images.size,
            images.quality,
            fetched_from,
            len(data),
            attempts,
            cost_usd,
            source,
        )

        self._progress(f"generated in {attempts} attempt(s); cost ${cost_usd:.3f}")
        self._progress(f"uploading to {len(images.channels)} channel(s)…")
        row, kept = await self._delivery.keep(
            row, data=data, kind=kind, images=images, attempts=attempts, cost_usd=cost_usd,
            revised_prompt=raw.revised_prompt,
        )  # fmt: skip
        return await self._delivery.deliver(row, plan=plan, data=data, extension=kind.extension, kept=kept)

    # ----- captions and checks

    async def _caption(self, plan: ImagePlan) -> str:
        if self._caption_writer is not None:
            try:
                text = await asyncio.wait_for(self._caption_writer(plan), timeout=CAPTION_TIMEOUT_SECONDS)
                if isinstance(text, str) and text.strip():
                    return text.strip()[:CAPTION_MAX_CHARS]
                log.info("weekly image: the caption writer returned nothing; using the template caption")
            except Exception as exc:
                log.warning("weekly image: caption writer failed (%s); using the template caption", type(exc).__name__)
        return template_caption(plan)

    async def check_prompt(self, prompt: str, config: LukasConfig) -> _PromptCheck:
        engine = None
        if self._contracts is not None:
            try:
                engine = self._contracts()
            except Exception as exc:
                log.exception("weekly image: the prompt checks could not be loaded")
                return _PromptCheck(False, prompt, f"prompt checks unavailable: {type(exc).__name__}", "failed")
        if engine is None:
            problems = basic_prompt_problems(prompt=prompt, banned_terms=list(config.contracts.banned_terms))
            if problems:
                return _PromptCheck(False, prompt, "prompt rejected: " + "; ".join(problems))
            return _PromptCheck(True, prompt)
        try:
            outcome = engine.check_image_prompt(prompt)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except Exception as exc:
            log.exception("weekly image: the prompt checks crashed")
            return _PromptCheck(False, prompt, f"prompt checks crashed: {type(exc).__name__}", "failed")
        if not getattr(outcome, "ok", False):
            reasons = "; ".join(str(r) for r in (getattr(outcome, "reasons", None) or [])) or "no reason given"
            contract = getattr(outcome, "contract", None)
            label = f"prompt rejected by the {contract} check" if contract else "prompt rejected by the prompt checks"
            return _PromptCheck(False, prompt, f"{label}: {reasons}")
        value = getattr(outcome, "value", None)
        fixed = value if isinstance(value, str) and value.strip() else prompt
        if fixed != prompt:
            log.info("weekly image: the prompt checks adjusted the prompt (%s)", "; ".join(outcome.reasons or []))
        return _PromptCheck(True, fixed)

    async def _skip(self, row: GeneratedImage, reason: str) -> GeneratedImage:
        log.warning("weekly image %s: skipped: %s", row.slot_key, reason)
        return await repo.change(self._sessions, row.id, now=self._now(), status="skipped", error=reason, cost_usd=0.0)

    async def _alert(self, kind: str, text: str) -> None:
        if self._alert_admins is None:
            return
        try:
            await self._alert_admins(kind, text)
        except Exception as exc:
            log.warning("could not alert the admins about %s: %s", kind, type(exc).__name__)

    async def _safe_by_key(self, key: str) -> GeneratedImage | None:
        try:
            return await repo.by_key(self._sessions, key)
        except Exception:
            return None
