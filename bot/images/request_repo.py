"""Claiming a picture request in one transaction: the request key, the person's daily quota and the image budget.

Every claim first locks one row (picture_quotas '*', this month), so claims run one after another in the
database: 20 requests at once from one person see each other's counts, and the quota and the budget hold exactly
(SQLite: the first write takes the database's write lock; PostgreSQL: the row lock, held until commit).

A request whose message was deleted in Slack before it arrived (a tombstone) is recorded erased and never drawn;
one deleted while it is drawn keeps no revised prompt (`unless_erased`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, literal, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.images.request_logic import GLOBAL_LOCK_USER
from bot.store.db import upsert_insert
from bot.store.models import GeneratedImage, MessageTombstone, PictureQuota

CLAIMED = "claimed"
DUPLICATE = "duplicate"
OVER_QUOTA = "over_quota"
OVER_BUDGET = "over_budget"
DELETED = "deleted"
DELETED_REASON = "the message asking for it was deleted in Slack; nothing was bought"


@dataclass(frozen=True)
class Claim:
    outcome: str  # CLAIMED | DUPLICATE | OVER_QUOTA | OVER_BUDGET | DELETED
    row_id: int | None = None
    reason: str = ""


async def _ensure_quota_row(session: AsyncSession, *, user_id: str, day: str) -> None:
    insert = upsert_insert(session.get_bind().dialect.name)
    await session.execute(insert(PictureQuota).values(user_id=user_id, day=day, used=0).on_conflict_do_nothing())


async def claim_request(
    sessions: async_sessionmaker[AsyncSession],
    *,
    key: str,
    user_id: str,
    quota: int,
    day: str,
    month: str,
    month_start: dt.datetime,
    month_end: dt.datetime,
    price_usd: float,
    budget_usd: float,
    now: dt.datetime,
    message: tuple[str, str] | None = None,
    **values: Any,
) -> Claim:
    """Record the request as a GeneratedImage row: pending with the price reserved (CLAIMED), or skipped with the
    reason (OVER_QUOTA / OVER_BUDGET, nothing reserved). DUPLICATE when the key was claimed before. DELETED (a
    skipped row without the idea) when `message` (channel, ts) was deleted in Slack before it arrived."""
    async with sessions() as session, session.begin():
        await _ensure_quota_row(session, user_id=GLOBAL_LOCK_USER, day=month)
        await session.execute(
            update(PictureQuota)
            .where(PictureQuota.user_id == GLOBAL_LOCK_USER, PictureQuota.day == month)
            .values(used=PictureQuota.used + 1)
        )
        if await session.scalar(select(GeneratedImage.id).where(GeneratedImage.slot_key == key)) is not None:
            return Claim(DUPLICATE)
        if message is not None and await _deleted(session, *message):
            outcome, reason = DELETED, DELETED_REASON
        else:
            outcome, reason = await _judge(
                session, user_id=user_id, quota=quota, day=day, month_start=month_start, month_end=month_end,
                price_usd=price_usd, budget_usd=budget_usd,
            )  # fmt: skip
        row = GeneratedImage(slot_key=key, requested_by=user_id, attempts=0, created_at=now, updated_at=now, **values)
        if outcome == DELETED:  # stored without the idea, like a deleted message
            row.prompt, row.erased_at = "", now
        row.status = "pending" if outcome == CLAIMED else "skipped"
        row.cost_usd = price_usd if outcome == CLAIMED else 0.0
        row.error = reason or None
        session.add(row)
        await session.flush()
        return Claim(outcome, row.id, reason)


async def _judge(
    session: AsyncSession,
    *,
    user_id: str,
    quota: int,
    day: str,
    month_start: dt.datetime,
    month_end: dt.datetime,
    price_usd: float,
    budget_usd: float,
) -> tuple[str, str]:
    """(CLAIMED, "") with the person's quota counted, or (OVER_QUOTA | OVER_BUDGET, why nothing was bought)."""
    await _ensure_quota_row(session, user_id=user_id, day=day)
    used = int(
        await session.scalar(select(PictureQuota.used).where(PictureQuota.user_id == user_id, PictureQuota.day == day))
        or 0
    )
    spent = float(
        await session.scalar(
            select(func.coalesce(func.sum(GeneratedImage.cost_usd), 0.0)).where(
                GeneratedImage.created_at >= month_start, GeneratedImage.created_at < month_end
            )
        )
        or 0.0
    )
    if used >= quota:
        return OVER_QUOTA, f"daily picture quota reached ({used} of {quota}); nothing was bought"
    if spent + price_usd > budget_usd + 1e-9:
        return OVER_BUDGET, (
            f"budget: ${spent:.3f} spent this month + ${price_usd:.3f} for this picture would exceed "
            f"images.monthly_budget_usd (${budget_usd:.2f}); nothing was bought"
        )
    await session.execute(
        update(PictureQuota)
        .where(PictureQuota.user_id == user_id, PictureQuota.day == day)
        .values(used=PictureQuota.used + 1)
    )
    return CLAIMED, ""


async def _deleted(session: AsyncSession, channel_id: str, ts: str) -> bool:
    tombstone = exists().where(MessageTombstone.channel_id == channel_id, MessageTombstone.slack_ts == ts)
    return bool(await session.scalar(select(tombstone)))


def unless_erased(text: str | None) -> ColumnElement[Any]:
    """The value for revised_prompt: `text`, unless the idea was erased while the picture was drawn (then NULL)."""
    if text is None:
        return null()
    return case((GeneratedImage.erased_at.is_(None), literal(text)), else_=null())


async def used_today(sessions: async_sessionmaker[AsyncSession], *, user_id: str, day: str) -> int:
    async with sessions() as session:
        value = await session.scalar(
            select(PictureQuota.used).where(PictureQuota.user_id == user_id, PictureQuota.day == day)
        )
        return int(value or 0)
