"""Erasing what Lukas stored: a person's own messages and the ideas of the pictures they asked for (`/lukas forget`,
`lukas forget --user`) and everything past `retention.days` (a daily job). Work goes in short batches, each its own
transaction, with a yield to the event loop between them, so answers keep flowing while a large table is erased."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import privacy_repo
from bot.store.models import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
RunDb = Callable[[Callable[[Connection], Any]], Awaitable[Any]]


def engine_runner(engine: AsyncEngine) -> RunDb:
    """Run a blocking Core unit on an AsyncEngine (for the CLI, outside the chat service's unit runner)."""

    async def run(work: Callable[[Connection], T]) -> T:
        async with engine.connect() as connection:
            return await connection.run_sync(work)

    return run


async def count_for_user(run_db: RunDb, *, user_id: str) -> int:
    return int(await run_db(lambda s: privacy_repo.count_for_user(s, user_id)))


async def forget_user(run_db: RunDb, *, user_id: str, batch_size: int = 1000) -> int:
    """Erase the text of every message this person wrote, picture requests included; returns how many."""
    erased = int(await run_db(lambda s: privacy_repo.erase_user_pictures(s, user_id)))
    after = 0
    while True:
        done, after = await run_db(
            partial(privacy_repo.erase_user_batch, user_id=user_id, after_id=after, batch_size=batch_size)
        )
        erased += done
        if not after:
            break
        await asyncio.sleep(0)
    log.info("erased the text of %d message(s) by %s on request", erased, user_id)
    return erased


async def erase_expired(
    run_db: RunDb, *, days: int, batch_size: int, now: dt.datetime | None = None, pause_seconds: float = 0.0
) -> int:
    """Erase the text of every message older than `days`; returns how many were erased."""
    before = (now or utcnow()) - dt.timedelta(days=days)
    pictures = int(await run_db(lambda s: privacy_repo.erase_older_pictures(s, before=before)))
    erased, after, batches = 0, 0, 0
    while True:
        done, after = await run_db(
            partial(privacy_repo.erase_older_batch, before=before, after_id=after, batch_size=batch_size)
        )
        erased += done
        batches += 1
        if not after:
            break
        await asyncio.sleep(pause_seconds)
    log.info(
        "retention: erased the text of %d message(s) and the ideas of %d picture request(s) older than %d days "
        "(%d batch(es))",
        erased,
        pictures,
        days,
        batches,
    )
    return erased + pictures


def forget_text(*, stored: int, erased: int | None) -> str:
    """What `/lukas forget` says: how many would be erased (asking for confirmation), or how many were."""
    if erased is not None:
        if erased == 0:
            return "There was nothing of yours left for me to forget 🐻"
        return f"Done! I erased the text of {erased} message(s) of yours 🐻 It won't reach my thoughts again."
    if stored == 0:
        return "I don't have any messages of yours stored, so there's nothing to forget 🐻"
    return (
        f"I have {stored} message(s) of yours stored 🐻 To erase their text for good, run `/lukas forget confirm`. "
        "(My cost ledger stays; it holds no words.)"
    )
