"""The weekly bear picture, end to end: claim the slot, plan, check, budget, generate, keep, post.

Every public method catches its own failures, records them on the GeneratedImage row, logs one
admin-readable line (loggers under `bot.images`) and returns: the picture never blocks chat.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config.images_schema import ImagesConfig
from bot.config.live import LiveConfig
from bot.config.schema import LukasConfig
from bot.errors import ImageGenerationError
from bot.images import repo
from bot.images.caption_logic import alt_text_for, filename_for, template_caption, title_for
from bot.images.cost_logic import budget_allows, budget_reason, image_cost, missing_price_reason, price_for
from bot.images.generation import ImageAPI, Sleep, image_bytes, request_image
from bot.images.posting import post_image
from bot.images.slots_logic import (
    SCHEDULER_SLACK,
    due_slot,
    latest_slot,
    local_day,
    manual_key,
    month_window,
    slot_key,
)
from bot.images.themes_logic import ImagePlan, basic_prompt_problems, plan_for_date, season_for
from bot.store.models import GeneratedImage

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
CaptionWriter = Callable[[ImagePlan], Awaitable[str | None]]
AlertAdmins = Callable[[str, str], Awaitable[bool]]
ContractsProvider = Callable[[], Any]

UPLOAD_STALE = dt.timedelta(minutes=30)  # an 'uploading' row older than this belongs to a run that died
RUN_STALE = dt.timedelta(hours=1)  # a 'pending' row without an image older than this was interrupted
CAPTION_TIMEOUT_SECONDS = 30.0
CAPTION_MAX_CHARS = 2000
RETRY_HINT = "it will be posted at the next run, or now with `lukas image --retry-uploads`"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _short(text: object, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


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
        clock: Clock = _utcnow,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._sessions = sessions
        self._slack = slack
        self._images = image_client
        self._contracts = contracts
        self._caption_writer = caption_writer
        self._alert_admins = alert_admins
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

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
            log.error("weekly image: could not check for interrupted runs: %s", _short(exc, 200))
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
        now = self._now()
        stale_before = now - UPLOAD_STALE
        try:
            rows = await repo.pending_uploads(self._sessions, stale_before=stale_before)
        except Exception as exc:
            log.error("weekly image: cannot look for kept images to post: %s", _short(exc, 200))
            return 0
        done = 0
        for row in rows:
            try:
                if not await repo.claim_upload(self._sessions, row.id, now=now, stale_before=stale_before):
                    continue  # another run or replica is posting it
                if await self._retry_one(row):
                    done += 1
            except Exception:
                log.exception("weekly image %s: retrying the upload failed unexpectedly", row.slot_key)
                await self._safe_change(row.id, upload_state=repo.UPLOAD_PENDING)
        return done

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
            log.error("weekly image %s: not run, the database is unavailable: %s", key, _short(exc, 300))
            return GeneratedImage(slot_key=key, status="failed", error=f"database unavailable: {_short(exc)}"), False
        if row is None:
            log.info("weekly image %s: already claimed by another run or replica; not generating again", key)
            existing = await self._safe_by_key(key)
            return existing or GeneratedImage(slot_key=key, status="pending"), False
        try:
            row = await self._produce(row, plan=plan, config=config, manual=manual, now=now)
        except Exception as exc:
            log.exception("weekly image %s: failed unexpectedly", key)
            row = await self._safe_change(row.id, status="failed", error=f"internal error: {type(exc).__name__}") or row
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

        check = await self._check_prompt(plan.prompt, config)
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
        spent = await repo.spent(self._sessions, start=start, end=end, exclude_id=row.id)
        if not budget_allows(spent_usd=spent, price_usd=price, budget_usd=images.monthly_budget_usd):
            return await self._skip(
                row, budget_reason(spent_usd=spent, price_usd=price, budget_usd=images.monthly_budget_usd)
            )
        # Reserve the price, so a run starting meanwhile counts it against the budget.
        row = await repo.change(self._sessions, row.id, now=self._now(), cost_usd=price)

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

        path = self._keep(key=key, extension=kind.extension, data=data, images=images)
        row = await repo.change(
            self._sessions,
            row.id,
            now=self._now(),
            attempts=attempts,
            cost_usd=cost_usd,
            revised_prompt=raw.revised_prompt,
            local_path=str(path) if path else None,
            upload_state=repo.UPLOAD_RUNNING,
        )
        return await self._deliver(row, plan=plan, data=data, extension=kind.extension, path=path)

    # ----- posting

    async def _deliver(
        self, row: GeneratedImage, *, plan: ImagePlan, data: bytes, extension: str, path: Path | None
    ) -> GeneratedImage:
        """Upload to every configured channel that does not have the picture yet, then record the outcome."""
        channels = list(self._config.current.images.channels)
        delivered = [c for c in (row.channel_id or "").split(",") if c]
        targets = [c for c in channels if c not in delivered]
        file_id, permalink = row.slack_file_id, row.slack_permalink
        problems: list[str] = []
        if targets:
            caption = await self._caption(plan)
            title, alt_text = title_for(plan), alt_text_for(plan)
            filename = filename_for(slot_key=row.slot_key, extension=extension)
            for channel in targets:
                result = await post_image(
                    self._slack,
                    channel=channel,
                    data=data,
                    filename=filename,
                    title=title,
                    alt_text=alt_text,
                    caption=caption,
                )
                if result.ok:
                    delivered.append(channel)
                    file_id = file_id or result.file_id
                    permalink = permalink or result.permalink
                    log.info("weekly image %s: posted to %s (file %s)", row.slot_key, channel, result.file_id)
                else:
                    problems.append(f"{channel}: {result.reason}")
                    log.error("weekly image %s: could not post to %s: %s", row.slot_key, channel, result.reason)
                    if result.admin_must_act:
                        text = f"The weekly bear picture could not be posted to <#{channel}>: {result.reason}."
                        await self._alert("image_upload", text)
        missing = [c for c in channels if c not in delivered]
        common = {"channel_id": ",".join(delivered) or None, "slack_file_id": file_id, "slack_permalink": permalink}
        if channels and not missing:
            self._discard(path)
            return await repo.change(
                self._sessions,
                row.id,
                now=self._now(),
                status="succeeded",
                error=None,
                local_path=None,
                upload_state=repo.UPLOAD_DONE,
                **common,
            )
        if not channels:
            problems.append("no channels configured (images.channels)")
        posted = f"posted to {', '.join(delivered)}; " if delivered else ""
        if path is None:
            reason = f"{posted}not posted to {'; '.join(problems)}. The image could not be kept on disk and is lost"
            state = repo.UPLOAD_LOST
        else:
            reason = f"{posted}not posted to {'; '.join(problems)}. The image is kept at {path}; {RETRY_HINT}"
            state = repo.UPLOAD_PENDING
        return await repo.change(
            self._sessions,
            row.id,
            now=self._now(),
            status="failed",
            error=_short(reason, 2000),
            upload_state=state,
            **common,
        )

    async def _retry_one(self, row: GeneratedImage) -> bool:
        path = Path(row.local_path) if row.local_path else None
        if path is None or not path.is_file():
            reason = f"the kept image file {path} is missing, so it cannot be posted"
            log.error("weekly image %s: %s", row.slot_key, reason)
            await repo.change(self._sessions, row.id, now=self._now(), upload_state=repo.UPLOAD_LOST, error=reason)
            return False
        if not self._config.current.images.channels:
            log.warning("weekly image %s: kept image waits for a channel in images.channels", row.slot_key)
            await repo.change(self._sessions, row.id, now=self._now(), upload_state=repo.UPLOAD_PENDING)
            return False
        data = path.read_bytes()
        plan = self._plan_from_row(row)
        extension = path.suffix.lstrip(".") or "png"
        log.info("weekly image %s: retrying the upload of the kept image %s", row.slot_key, path)
        updated = await self._deliver(row, plan=plan, data=data, extension=extension, path=path)
        return updated.upload_state == repo.UPLOAD_DONE

    def _plan_from_row(self, row: GeneratedImage) -> ImagePlan:
        images = self._config.current.images
        created = row.created_at or self._now()
        day = local_day(moment=created, timezone=images.schedule.timezone)
        occasion = row.occasion
        milestone = occasion.removeprefix("milestone: ") if occasion and occasion.startswith("milestone: ") else None
        modifier = next((o.modifier for o in images.occasions if o.name == occasion), None)
        return ImagePlan(
            day=day,
            season=season_for(day=day, hemisphere=images.hemisphere),
            theme=row.theme or "",
            occasion=occasion,
            prompt=row.prompt,
            occasion_modifier=modifier,
            milestone=milestone,
        )

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

    # ----- checks and helpers

    async def _check_prompt(self, prompt: str, config: LukasConfig) -> _PromptCheck:
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

    def _storage_dir(self, images: ImagesConfig) -> Path:
        directory = Path(images.storage_dir).expanduser()
        return directory if directory.is_absolute() else self._config.base_dir / directory

    def _keep(self, *, key: str, extension: str, data: bytes, images: ImagesConfig) -> Path | None:
        """Write the paid image to storage_dir before any upload, so a failed upload never loses it."""
        directory = self._storage_dir(images)
        path = (directory / filename_for(slot_key=key, extension=extension)).resolve()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(path.suffix + ".part")
            temporary.write_bytes(data)
            os.replace(temporary, path)
        except OSError as exc:
            log.error("weekly image %s: cannot keep the image in %s: %s", key, directory, exc.strerror or exc)
            return None
        return path

    @staticmethod
    def _discard(path: Path | None) -> None:
        if path is None:
            return
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete the posted image %s: %s", path, exc.strerror or exc)

    async def _alert(self, kind: str, text: str) -> None:
        if self._alert_admins is None:
            return
        try:
            await self._alert_admins(kind, text)
        except Exception as exc:
            log.warning("could not alert the admins about %s: %s", kind, type(exc).__name__)

    async def _safe_change(self, row_id: int, **values: Any) -> GeneratedImage | None:
        try:
            return await repo.change(self._sessions, row_id, now=self._now(), **values)
        except Exception as exc:
            log.error("weekly image: could not record the outcome of row %s: %s", row_id, _short(exc, 200))
            return None

    async def _safe_by_key(self, key: str) -> GeneratedImage | None:
        try:
            return await repo.by_key(self._sessions, key)
        except Exception:
            return None
