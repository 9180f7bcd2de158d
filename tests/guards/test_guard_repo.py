"""Guard state in the database: windows that outlive a connection (and so a restart), stale ones forgotten, admin
notices claimed once. Real SQLite, and PostgreSQL when configured."""

from __future__ import annotations

from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.limits_logic import ANSWER, QUIET, SLOW_DOWN, Limit
from bot.config.guards_schema import Window
from bot.store import guard_repo
from bot.store.models import AdminNotice, GuardWindow

TWO = Limit("p:global:U0ANNA", Window(messages=2, window_seconds=60))


async def run(engine: AsyncEngine, work: object) -> object:
    async with engine.connect() as connection:
        return await connection.run_sync(work)  # type: ignore[arg-type]


def judged(requests: list[list[Limit]], now: float) -> object:
    def work(c: Connection) -> list[str]:
        verdicts = guard_repo.judge(c, requests, now=now)
        c.commit()
        return verdicts

    return work


async def test_windows_outlive_the_connection_that_judged(db_engine: AsyncEngine) -> None:
    assert await run(db_engine, judged([[TWO], [TWO]], 0.0)) == [ANSWER, ANSWER]
    assert await run(db_engine, judged([[TWO]], 1.0)) == [SLOW_DOWN]  # a fresh connection: as after a restart
    assert await run(db_engine, judged([[TWO]], 2.0)) == [QUIET]
    assert await run(db_engine, judged([[TWO]], 60.5)) == [ANSWER]  # both answers at t=0 left the window
    rows = await run(db_engine, lambda c: c.execute(select(GuardWindow.hits, GuardWindow.warned_at)).all())
    assert [tuple(r) for r in rows] == [("60.500", 1.0)]  # type: ignore[attr-defined]


async def test_windows_nobody_used_for_a_day_are_forgotten(db_engine: AsyncEngine) -> None:
    other = Limit("p:global:U0BEN", Window(messages=2, window_seconds=60))
    await run(db_engine, judged([[TWO]], 0.0))
    await run(db_engine, judged([[other]], 50_000.0))

    def forget(c: Connection) -> int:
        gone = guard_repo.forget_stale_windows(c, now=86_400.5)
        c.commit()
        return gone

    assert await run(db_engine, forget) == 1
    keys = await run(db_engine, lambda c: c.execute(select(GuardWindow.key)).scalars().all())
    assert keys == ["p:global:U0BEN"]


async def test_an_admin_notice_is_claimed_once_until_released(db_engine: AsyncEngine) -> None:
    def claim(c: Connection) -> bool:
        return guard_repo.claim_notice(c, key="chat_budget:2026-12", kind="chat_budget")

    assert await run(db_engine, claim) is True
    assert await run(db_engine, claim) is False
    await run(db_engine, lambda c: guard_repo.release_notice(c, key="chat_budget:2026-12"))
    assert await run(db_engine, claim) is True
    count = await run(db_engine, lambda c: c.execute(select(func.count()).select_from(AdminNotice)).scalar_one())
    assert count == 1
