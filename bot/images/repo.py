"""GeneratedImage rows: the slot claim (a unique key), state changes, the month's spending, pending uploads and the
kept bytes of pictures waiting for Slack (picture_files).

Every function is one short transaction. Times are passed in (UTC) so tests can move the clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import GeneratedImage, PictureFile

Sessions = async_sessionmaker[AsyncSession]

UPLOAD_PENDING = "pending"  # the bytes are kept and some channel (or the requester's thread) does not have them yet
UPLOAD_RUNNING = "uploading"  # a run or a retrier owns the upload right now
UPLOAD_DONE = "done"
UPLOAD_LOST = "lost"  # the bytes could be kept nowhere: nothing left to upload
UPLOAD_EXPIRED = "expired"  # not posted in time (delivery.KEEP_UNPOSTED): the kept bytes were deleted


async def claim(sessions: Sessions, *, slot_key: str, now: dt.datetime, **values: Any) -> GeneratedImage | None:
    """Insert the slot's row (status pending). None when another run (or replica) already holds the slot."""
    row = GeneratedImage(slot_key=slot_key, status="pending", attempts=0, created_at=now, updated_at=now, **values)
    async with sessions() as session:
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return None
    return row


async def by_key(sessions: Sessions, slot_key: str) -> GeneratedImage | None:
    async with sessions() as session:
        return (await session.execute(select(GeneratedImage).where(GeneratedImage.slot_key == slot_key))).scalar()


async def by_id(sessions: Sessions, row_id: int) -> GeneratedImage | None:
    async with sessions() as session:
        return await session.get(GeneratedImage, row_id)


async def change(
    sessions: Sessions, row_id: int, *, now: dt.datetime, forget_file: bool = False, **values: Any
) -> GeneratedImage:
    """Update one row and return it as stored. `forget_file` also deletes its kept bytes, in the same transaction."""
    async with sessions() as session:
        await session.execute(
            update(GeneratedImage).where(GeneratedImage.id == row_id).values(updated_at=now, **values)
        )
        if forget_file:
            await session.execute(delete(PictureFile).where(PictureFile.image_id == row_id))
        await session.commit()
        row = await session.get(GeneratedImage, row_id, populate_existing=True)
    assert row is not None
    return row


async def last_theme(sessions: Sessions, *, before: dt.datetime) -> str | None:
    """The theme of the newest image that was generated before `before` (what people last saw)."""
    async with sessions() as session:
        result = await session.execute(
            select(GeneratedImage.theme)
            .where(
                GeneratedImage.created_at < before,
                GeneratedImage.theme.is_not(None),
                or_(GeneratedImage.status == "succeeded", GeneratedImage.local_path.is_not(None)),
            )
            .order_by(GeneratedImage.created_at.desc(), GeneratedImage.id.desc())
            .limit(1)
        )
        return result.scalar()


async def spent(sessions: Sessions, *, start: dt.datetime, end: dt.datetime, exclude_id: int | None = None) -> float:
    """Dollars recorded (spent, or reserved by a run in flight) for rows created in [start, end)."""
    query = select(func.coalesce(func.sum(GeneratedImage.cost_usd), 0.0)).where(
        GeneratedImage.created_at >= start, GeneratedImage.created_at < end
    )
    if exclude_id is not None:
        query = query.where(GeneratedImage.id != exclude_id)
    async with sessions() as session:
        return float((await session.execute(query)).scalar() or 0.0)


def _upload_claimable(stale_before: dt.datetime):  # type: ignore[no-untyped-def]
    return or_(
        GeneratedImage.upload_state == UPLOAD_PENDING,
        (GeneratedImage.upload_state == UPLOAD_RUNNING) & (GeneratedImage.updated_at < stale_before),
    )


async def pending_uploads(sessions: Sessions, *, stale_before: dt.datetime) -> list[GeneratedImage]:
    """Rows whose image waits for Slack: pending, or 'uploading' by a run that died before `stale_before`."""
    async with sessions() as session:
        result = await session.execute(
            select(GeneratedImage).where(_upload_claimable(stale_before)).order_by(GeneratedImage.id)
        )
        return list(result.scalars())


async def claim_upload(sessions: Sessions, row_id: int, *, now: dt.datetime, stale_before: dt.datetime) -> bool:
    """Compare-and-set pending -> uploading, so two retriers never post the same image twice."""
    async with sessions() as session:
        result = await session.execute(
            update(GeneratedImage)
            .where(GeneratedImage.id == row_id, _upload_claimable(stale_before))
            .values(upload_state=UPLOAD_RUNNING, updated_at=now)
        )
        await session.commit()
        return (result.rowcount or 0) == 1  # type: ignore[attr-defined]


async def fail_interrupted(sessions: Sessions, *, stale_before: dt.datetime, now: dt.datetime) -> int:
    """Rows left 'pending' with no image by a run that stopped midway (Lukas was killed) become failed."""
    async with sessions() as session:
        result = await session.execute(
            update(GeneratedImage)
            .where(
                GeneratedImage.status == "pending",
                GeneratedImage.upload_state.is_(None),
                GeneratedImage.updated_at < stale_before,
            )
            .values(
                status="failed",
                error="interrupted: Lukas stopped during this run (the image API may have been called)",
                updated_at=now,
            )
        )
        await session.commit()
        return result.rowcount or 0  # type: ignore[attr-defined]


async def keep_file(
    sessions: Sessions, row_id: int, *, data: bytes, mime: str, now: dt.datetime, **values: Any
) -> GeneratedImage:
    """Store a paid picture's bytes and update its row in one transaction (no moment where the row says
    'uploading' without the bytes being anywhere)."""
    async with sessions() as session:
        session.add(PictureFile(image_id=row_id, data=data, mime=mime, size=len(data), created_at=now))
        await session.execute(
            update(GeneratedImage).where(GeneratedImage.id == row_id).values(updated_at=now, **values)
        )
        await session.commit()
        row = await session.get(GeneratedImage, row_id, populate_existing=True)
    assert row is not None
    return row


async def kept_file(sessions: Sessions, row_id: int) -> PictureFile | None:
    """The kept bytes of one picture (loaded one at a time: each is megabytes)."""
    async with sessions() as session:
        return await session.get(PictureFile, row_id)


async def expire_uploads(
    sessions: Sessions, *, before: dt.datetime, stale_before: dt.datetime, now: dt.datetime, reason: str
) -> list[str]:
    """Give up pictures made before `before` that still wait for Slack (and are not being posted right now), and
    delete their kept bytes and every kept file older than that (one left behind by a run that died). Returns the
    slot keys given up."""
    waiting = _upload_claimable(stale_before) & (GeneratedImage.created_at < before)
    async with sessions() as session:
        given_up = (await session.execute(select(GeneratedImage.id, GeneratedImage.slot_key).where(waiting))).all()
        ids = [row_id for row_id, _key in given_up]
        if ids:
            await session.execute(
                update(GeneratedImage)
                .where(waiting, GeneratedImage.id.in_(ids))
                .values(upload_state=UPLOAD_EXPIRED, error=reason, updated_at=now)
            )
        await session.execute(
            delete(PictureFile).where(or_(PictureFile.created_at < before, PictureFile.image_id.in_(ids)))
        )
        await session.commit()
    return [key for _row_id, key in given_up]
