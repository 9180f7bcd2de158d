"""The process's APScheduler: the weekly picture (bot.images), its state for /healthz and `/lukas status`.

The job itself (claiming slots, budget, posting) lives in bot.images; this module only owns the scheduler's
life: install at start (plus a catch-up run for a slot missed while Lukas was down), follow config edits
(bot.images.schedule reschedules on a changed cron), shut down at stop.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config.live import LiveConfig
from bot.images import schedule
from bot.images.caption_service import gateway_caption_writer
from bot.images.factory import build_job
from bot.images.job import WeeklyImageJob
from bot.logging_setup import StoppedByShutdown
from bot.store.models import GeneratedImage

log = logging.getLogger(__name__)


# The shutdown cancels a job still running (a catch-up, a retry of kept pictures): one line, not a traceback.
logging.getLogger("apscheduler.executors.default").addFilter(
    StoppedByShutdown('Job "%s" was stopped by the shutdown; it runs again at its next time (or the next start)')
)

RUNNING = "running"
STOPPED = "stopped"
DISABLED = "disabled"


class ImageScheduler:
    def __init__(self, services: Any) -> None:
        self._config: LiveConfig = services.config
        self.scheduler = AsyncIOScheduler(timezone=dt.UTC)
        self.job: WeeklyImageJob = build_job(services, caption_writer=gateway_caption_writer(services))

    def start(self) -> None:
        schedule.install(self.scheduler, self.job, self._config, catch_up=True, follow_changes=True)
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    @property
    def state(self) -> str:
        """running | stopped | disabled (images off in config.yml)."""
        if not self._config.current.images.enabled:
            return DISABLED
        return RUNNING if self.scheduler.running else STOPPED

    def next_run(self) -> dt.datetime | None:
        if not self.scheduler.running:
            return None
        scheduled = self.scheduler.get_job(schedule.JOB_ID)
        return getattr(scheduled, "next_run_time", None) if scheduled is not None else None

    async def run_now(self) -> GeneratedImage:
        """`/lukas image now`: generate and post right away (budget and prompt checks apply)."""
        return await self.job.run_now()
