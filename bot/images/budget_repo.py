"""The monthly image budget as one row per month, reserved from atomically.

Two runs at once (two admins, a double click, a manual run on the weekly slot) must not both pass the check and
both buy. The reservation is a single conditional UPDATE of the month's row — `reserved + price <= budget` — which
PostgreSQL re-evaluates after a concurrent update of the same row commits, and which SQLite serialises (one
writer). The row starts at what the month already shows in generated_images, so upgrading mid-month keeps count.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import upsert_insert
from bot.store.models import GeneratedImage, ImageBudgetMonth

Sessions = async_sessionmaker[AsyncSession]
_EPSILON = 1e-9


async def _ensure_month(session: AsyncSession, *, month: str, start: dt.datetime, end: dt.datetime) -> None:
    spent = select(func.coalesce(func.sum(GeneratedImage.cost_usd), 0.0)).where(
        GeneratedImage.created_at >= start, GeneratedImage.created_at < end
    )
    already = float((await session.execute(spent)).scalar() or 0.0)
    insert = upsert_insert(session.get_bind().dialect.name)
    statement = insert(ImageBudgetMonth).values(month=month, reserved_usd=already)
    await session.execute(statement.on_conflict_do_nothing(index_elements=["month"]))


async def reserve(
    sessions: Sessions, *, month: str, start: dt.datetime, end: dt.datetime, amount: float, budget: float
) -> bool:
    """Reserve `amount` dollars of the month's budget; False (nothing reserved) when it would go over."""
    async with sessions() as session:
        await _ensure_month(session, month=month, start=start, end=end)
        await session.commit()
        result = await session.execute(
            update(ImageBudgetMonth)
            .where(ImageBudgetMonth.month == month, ImageBudgetMonth.reserved_usd + amount <= budget + _EPSILON)
            .values(reserved_usd=ImageBudgetMonth.reserved_usd + amount)
        )
        await session.commit()
        return getattr(result, "rowcount", 0) == 1  # an UPDATE's CursorResult


async def adjust(sessions: Sessions, *, month: str, delta: float) -> None:
    """Correct a reservation: give it back (a failed, unpaid run: -price) or settle the real cost (cost - price)."""
    if abs(delta) < _EPSILON:
        return
    async with sessions() as session:
        await session.execute(
            update(ImageBudgetMonth)
            .where(ImageBudgetMonth.month == month)
            .values(reserved_usd=ImageBudgetMonth.reserved_usd + delta)
        )
        await session.commit()


async def reserved(sessions: Sessions, *, month: str) -> float:
    async with sessions() as session:
        value = await session.scalar(select(ImageBudgetMonth.reserved_usd).where(ImageBudgetMonth.month == month))
        return float(value or 0.0)
