"""`lukas run`'s life: migrate, start, wait for SIGTERM/SIGINT, stop. The signals are taken before anything
waits, so a stop while Slack cannot be reached yet ends the start at once and exits cleanly (issue 23)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable

from bot import heap
from bot.config.live import LiveConfig
from bot.config.schema import LukasConfig
from bot.logging_setup import configure_logging
from bot.runtime import Lukas
from bot.settings import Settings
from bot.store import migrate

log = logging.getLogger(__name__)


def _apply_logging(old: LukasConfig, new: LukasConfig) -> None:
    """A reload that changes `logging:` (level, json) applies at once."""
    if old.logging != new.logging:
        configure_logging(level=new.logging.level, json_lines=new.logging.json_lines)
        log.info("logging is now %s%s", new.logging.level, " (JSON lines)" if new.logging.json_lines else "")


async def serve(settings: Settings, config: LiveConfig, *, upgrade: bool) -> None:
    """`lukas run`: migrate, start, wait for SIGTERM/SIGINT, stop. The signals are taken from the very beginning:
    a stop while Slack cannot be reached yet ends the start at once and exits cleanly (issue 23)."""
    heap.limit_arenas()  # before the database thread and the executor's threads exist
    current = config.current
    configure_logging(level=current.logging.level, json_lines=current.logging.json_lines)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if upgrade and current.database.upgrade_on_start:  # a migration under way is finished, not cut
        await migrate.upgrade_on_start(
            settings.database_url, log_level=current.logging.level, json_lines=current.logging.json_lines
        )
    config.on_change(_apply_logging)
    lukas = Lukas(settings, config)
    try:
        if not stop.is_set() and await _unless_stopped(lukas.start(), stop):
            await stop.wait()
        log.info("shutting down (signal received)")
    finally:
        await lukas.stop()


async def _unless_stopped(work: Awaitable[object], stop: asyncio.Event) -> bool:
    """Await `work` unless `stop` is set first: then it is cancelled and False returned. Its errors propagate."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return not task.cancelled()
