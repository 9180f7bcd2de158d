"""Usage figures straight from the database: a few GROUP BY queries (SQLAlchemy Core), no rows in memory."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.admin.usage_logic import ImageUsage, ModelUsage, PurposeUsage, UsageData, month_start
from bot.store.models import GeneratedImage, LLMCall, Message

Sessions = async_sessionmaker[AsyncSession]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


async def collect_usage(
    sessions: Sessions, *, days: int, now: dt.datetime | None = None, month_timezone: str = "UTC"
) -> UsageData:
    """Figures for [now - days, now), and month to date (the month as the image budget counts it)."""
    until = _utc(now or dt.datetime.now(dt.UTC))
    since = until - dt.timedelta(days=days)
    start_of_month = month_start(now=until, timezone=month_timezone)
    ok = func.sum(case((LLMCall.outcome == "ok", 1), else_=0))
    async with sessions() as session:
        message_rows = await session.execute(
            select(Message.sender, func.count())
            .where(Message.created_at >= since, Message.created_at < until)
            .group_by(Message.sender)
        )
        flagged = await session.scalar(
            select(func.count()).where(
                Message.created_at >= since, Message.created_at < until, Message.sender == "user", Message.flagged
            )
        )
        model_rows = await session.execute(
            select(
                LLMCall.provider,
                LLMCall.model,
                func.count(),
                ok,
                func.coalesce(func.sum(LLMCall.attempts), 0),
                func.coalesce(func.sum(LLMCall.prompt_tokens), 0),
                func.coalesce(func.sum(LLMCall.completion_tokens), 0),
                func.coalesce(func.sum(LLMCall.cost_usd), 0.0),
                func.count() - func.count(LLMCall.cost_usd),  # NULL cost: the model had no price
            )
            .where(LLMCall.created_at >= since, LLMCall.created_at < until)
            .group_by(LLMCall.provider, LLMCall.model)
        )
        purpose_rows = await session.execute(
            select(LLMCall.purpose, func.count(), func.coalesce(func.sum(LLMCall.cost_usd), 0.0))
            .where(LLMCall.created_at >= since, LLMCall.created_at < until)
            .group_by(LLMCall.purpose)
        )
        image_rows = await session.execute(
            select(GeneratedImage.status, func.count(), func.coalesce(func.sum(GeneratedImage.cost_usd), 0.0))
            .where(GeneratedImage.created_at >= since, GeneratedImage.created_at < until)
            .group_by(GeneratedImage.status)
        )
        month_chat, month_chat_unpriced = (
            await session.execute(
                select(
                    func.coalesce(func.sum(LLMCall.cost_usd), 0.0), func.count() - func.count(LLMCall.cost_usd)
                ).where(LLMCall.created_at >= start_of_month, LLMCall.created_at < until)
            )
        ).one()
        month_images = await session.scalar(
            select(func.coalesce(func.sum(GeneratedImage.cost_usd), 0.0)).where(
                GeneratedImage.created_at >= start_of_month, GeneratedImage.created_at < until
            )
        )
    return UsageData(
        since=since,
        until=until,
        messages={str(sender): int(count) for sender, count in message_rows},
        flagged=int(flagged or 0),
        models=[
            ModelUsage(
                provider=str(provider),
                model=str(model),
                calls=int(calls),
                ok_calls=int(ok_calls or 0),
                attempts=int(attempts),
                prompt_tokens=int(prompt),
                completion_tokens=int(completion),
                cost_usd=float(cost),
                unpriced_calls=int(unpriced or 0),
            )
            for provider, model, calls, ok_calls, attempts, prompt, completion, cost, unpriced in model_rows
        ],
        purposes={
            str(purpose): PurposeUsage(calls=int(n), cost_usd=float(cost or 0.0)) for purpose, n, cost in purpose_rows
        },
        images=[ImageUsage(status=str(status), count=int(n), cost_usd=float(cost)) for status, n, cost in image_rows],
        month_start=start_of_month,
        month_chat_usd=float(month_chat or 0.0),
        month_chat_unpriced_calls=int(month_chat_unpriced or 0),
        month_image_usd=float(month_images or 0.0),
    )
