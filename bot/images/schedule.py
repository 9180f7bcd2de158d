"""The weekly picture on an APScheduler 3.x AsyncIOScheduler: one cron job, rescheduled when config.yml changes.

APScheduler's job stores cannot be shared between processes, so the scheduler only says *when*; the slot claim
in the database (WeeklyImageJob) makes sure each slot is posted once across restarts and replicas.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config.images_schema import ImagesConfig
from bot.config.live import LiveConfig
from bot.config.schema import LukasConfig
from bot.images.slots_logic import trigger_for

log = logging.getLogger(__name__)

JOB_ID = "lukas-weekly-image"
CATCH_UP_JOB_ID = "lukas-weekly-image-catch-up"
RETRY_JOB_ID = "lukas-picture-upload-retry"
RETRY_EVERY = dt.timedelta(hours=1)  # kept pictures (weekly and on request) Slack did not take: tried again this often


def _images(config: LiveConfig | LukasConfig | ImagesConfig) -> ImagesConfig:
    if isinstance(config, LiveConfig):
        return config.current.images
    if isinstance(config, LukasConfig):
        return config.images
    return config


def _grace_seconds(images: ImagesConfig) -> int:
    return max(1, images.schedule.grace_minutes * 60)


def install(
    scheduler: AsyncIOScheduler, job: Any, config: LiveConfig, *, catch_up: bool = True, follow_changes: bool = True
) -> Job:
    """Add the cron job (coalesce=True, misfire_grace_time from images.schedule.grace_minutes) calling
    `job.run_due`, and `job.retry_uploads` every RETRY_EVERY (also while images.enabled is false: the pictures
    waiting are paid for, and pictures on request do not depend on it). With `catch_up`, also run `job.catch_up()`
    once right away (a missed slot within the grace, kept uploads). With `follow_changes`, a config.yml edit of
    images.schedule or images.enabled reschedules it. Works before or after `scheduler.start()`."""
    images = _images(config)
    scheduled = scheduler.add_job(
        job.run_due,
        trigger=trigger_for(images.schedule),
        id=JOB_ID,
        name="weekly bear picture",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=_grace_seconds(images),
    )
    if not images.enabled:
        scheduled.pause()
    scheduler.add_job(
        job.retry_uploads,
        trigger="interval",
        seconds=RETRY_EVERY.total_seconds(),
        id=RETRY_JOB_ID,
        name="post kept pictures",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
    )
    if catch_up:
        scheduler.add_job(
            job.catch_up,
            trigger="date",
            run_date=dt.datetime.now(dt.UTC),
            id=CATCH_UP_JOB_ID,
            replace_existing=True,
            misfire_grace_time=None,
        )
    if follow_changes:

        def on_change(old: LukasConfig, new: LukasConfig) -> None:
            if old.images.schedule != new.images.schedule or old.images.enabled != new.images.enabled:
                reschedule(scheduler, new)

        config.on_change(on_change)
    log.info("weekly image: %s", describe(scheduler))
    return scheduled


def reschedule(scheduler: AsyncIOScheduler, config: LiveConfig | LukasConfig | ImagesConfig) -> Job | None:
    """Apply the current images.schedule / images.enabled to the installed job (idempotent)."""
    scheduled = scheduler.get_job(JOB_ID)
    if scheduled is None:
        log.warning("weekly image: reschedule called before install; nothing to reschedule")
        return None
    images = _images(config)
    scheduled.modify(misfire_grace_time=_grace_seconds(images), coalesce=True)
    if not images.enabled:
        return scheduled.pause()
    scheduled = scheduled.reschedule(trigger=trigger_for(images.schedule))
    log.info("weekly image: %s", describe(scheduler))
    return scheduled


def describe(scheduler: AsyncIOScheduler) -> str:
    scheduled = scheduler.get_job(JOB_ID)
    if scheduled is None:
        return "not scheduled"
    next_run = getattr(scheduled, "next_run_time", None)
    if next_run is None:
        return "paused (images.enabled is false)" if scheduler.running else f"scheduled: {scheduled.trigger}"
    return f"next picture at {next_run.isoformat()} ({scheduled.trigger})"
