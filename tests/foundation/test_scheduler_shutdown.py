"""Stopping Lukas while a picture job runs is not an error: APScheduler's shutdown cancels the job and would log a
traceback ("raised an exception"); Lukas logs one plain line instead (bot.scheduling). Found by CI: a catch-up
still reading the database when `lukas run` got SIGTERM put a traceback on stderr."""

from __future__ import annotations

import asyncio
import logging

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

import bot.scheduling  # noqa: F401  (installs the filter on APScheduler's executor logger)


async def test_a_job_cancelled_by_the_shutdown_logs_one_line_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = asyncio.Event()

    async def slow_job() -> None:
        started.set()
        await asyncio.sleep(30)

    scheduler = AsyncIOScheduler()
    scheduler.add_job(slow_job, name="post kept pictures")
    with caplog.at_level(logging.INFO, logger="apscheduler"):
        scheduler.start()
        await asyncio.wait_for(started.wait(), timeout=5)
        scheduler.shutdown(wait=False)
        for _ in range(50):  # the cancelled job reports on a later turn of the loop
            await asyncio.sleep(0.02)
            if any("stopped by the shutdown" in r.getMessage() for r in caplog.records):
                break

    reports = [r for r in caplog.records if r.name == "apscheduler.executors.default" and "Running" not in r.msg]
    assert len(reports) == 1, [r.getMessage() for r in reports]
    assert reports[0].levelno == logging.INFO
    assert "post kept pictures" in reports[0].getMessage()
    assert "stopped by the shutdown" in reports[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)  # no traceback anywhere


def test_a_connection_dropped_by_the_shutdown_is_one_line_not_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    import bot.store.db  # noqa: F401  (installs the filter on SQLAlchemy's pool loggers)

    pool_log = logging.getLogger("sqlalchemy.pool.impl.AsyncAdaptedQueuePool")
    with caplog.at_level(logging.INFO, logger="sqlalchemy.pool"):
        try:
            raise asyncio.CancelledError
        except asyncio.CancelledError:
            pool_log.error("Exception during reset or similar", exc_info=True)  # what _finalize_fairy logs
        try:
            raise OSError("disk full")
        except OSError:
            pool_log.error("Exception during reset or similar", exc_info=True)  # a real error keeps its traceback
    cancelled, real = [r for r in caplog.records if r.name == pool_log.name]
    assert cancelled.levelno == logging.INFO and cancelled.exc_info is None
    assert "dropped" in cancelled.getMessage() and "nothing is lost" in cancelled.getMessage()
    assert real.levelno == logging.ERROR and real.exc_info is not None
