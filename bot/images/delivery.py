"""Getting a paid picture into the channels: keep the bytes on disk first, post, and retry kept uploads later.

Split from the job so the run (plan, check, budget, generate) and the delivery (disk, Slack, retries) read apart.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config.images_schema import ImagesConfig
from bot.config.live import LiveConfig
from bot.images import repo
from bot.images.caption_logic import alt_text_for, filename_for, title_for
from bot.images.posting import post_image
from bot.images.retry_logic import short
from bot.images.slots_logic import local_day
from bot.images.themes_logic import ImagePlan, season_for
from bot.settings import DEFAULT_DATA_DIR
from bot.store.models import GeneratedImage

log = logging.getLogger(__name__)

Caption = Callable[[ImagePlan], Awaitable[str]]
Alert = Callable[[str, str], Awaitable[None]]
Now = Callable[[], dt.datetime]

UPLOAD_STALE = dt.timedelta(minutes=30)  # an 'uploading' row older than this belongs to a run that died
RETRY_HINT = "it will be posted at the next run, or now with `lukas image --retry-uploads`"


async def safe_change(
    sessions: async_sessionmaker[AsyncSession], row_id: int, *, now: Now, **values: Any
) -> GeneratedImage | None:
    """Record an outcome without raising: the caller is already handling a failure."""
    try:
        return await repo.change(sessions, row_id, now=now(), **values)
    except Exception as exc:
        log.error("weekly image: could not record the outcome of row %s: %s", row_id, short(exc, 200))
        return None


class ImageDelivery:
    """Posts a generated picture to every configured channel, keeping it on disk until all of them have it."""

    def __init__(
        self,
        *,
        config: LiveConfig,
        sessions: async_sessionmaker[AsyncSession],
        slack: AsyncWebClient,
        caption: Caption,
        alert: Alert,
        now: Now,
        data_dir: Path | None = None,
    ) -> None:
        self._config = config
        self._data_dir = data_dir if data_dir is not None else Path(DEFAULT_DATA_DIR)
        self._sessions = sessions
        self._slack = slack
        self._caption = caption
        self._alert = alert
        self._now = now

    async def retry_uploads(self) -> int:
        """Post kept images that some configured channel does not have yet. Returns how many are now fully posted."""
        now = self._now()
        stale_before = now - UPLOAD_STALE
        try:
            rows = await repo.pending_uploads(self._sessions, stale_before=stale_before)
        except Exception as exc:
            log.error("weekly image: cannot look for kept images to post: %s", short(exc, 200))
            return 0
        done = 0
        for row in rows:
            try:
                if not await repo.claim_upload(self._sessions, row.id, now=now, stale_before=stale_before):
                    continue  # another run or replica is posting it
                if await self._retry_one(row):
                    done += 1
            except Exception:
                log.exception("weekly image %s: retrying the upload failed unexpectedly", row.slot_key)
                await safe_change(self._sessions, row.id, now=self._now, upload_state=repo.UPLOAD_PENDING)
        return done

    def keep(self, *, key: str, extension: str, data: bytes, images: ImagesConfig) -> Path | None:
        """Write the paid image to storage_dir before any upload, so a failed upload never loses it."""
        directory = self._storage_dir(images)
        path = (directory / filename_for(slot_key=key, extension=extension)).resolve()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(path.suffix + ".part")
            temporary.write_bytes(data)
            os.replace(temporary, path)
        except OSError as exc:
            log.error("weekly image %s: cannot keep the image in %s: %s", key, directory, exc.strerror or exc)
            return None
        return path

    async def deliver(
        self, row: GeneratedImage, *, plan: ImagePlan, data: bytes, extension: str, path: Path | None
    ) -> GeneratedImage:
        """Upload to every configured channel that does not have the picture yet, then record the outcome."""
        channels = list(self._config.current.images.channels)
        delivered = [c for c in (row.channel_id or "").split(",") if c]
        targets = [c for c in channels if c not in delivered]
        file_id, permalink = row.slack_file_id, row.slack_permalink
        problems: list[str] = []
        if targets:
            caption = await self._caption(plan)
            title, alt_text = title_for(plan), alt_text_for(plan)
            filename = filename_for(slot_key=row.slot_key, extension=extension)
            for channel in targets:
                result = await post_image(
                    self._slack,
                    channel=channel,
                    data=data,
                    filename=filename,
                    title=title,
                    alt_text=alt_text,
                    caption=caption,
                )
                if result.ok:
                    delivered.append(channel)
                    file_id = file_id or result.file_id
                    permalink = permalink or result.permalink
                    log.info("weekly image %s: posted to %s (file %s)", row.slot_key, channel, result.file_id)
                else:
                    problems.append(f"{channel}: {result.reason}")
                    log.error("weekly image %s: could not post to %s: %s", row.slot_key, channel, result.reason)
                    if result.admin_must_act:
                        text = f"The weekly bear picture could not be posted to <#{channel}>: {result.reason}."
                        await self._alert("image_upload", text)
        missing = [c for c in channels if c not in delivered]
        common = {"channel_id": ",".join(delivered) or None, "slack_file_id": file_id, "slack_permalink": permalink}
        if channels and not missing:
            self._discard(path)
            return await repo.change(
                self._sessions,
                row.id,
                now=self._now(),
                status="succeeded",
                error=None,
                local_path=None,
                upload_state=repo.UPLOAD_DONE,
                **common,
            )
        if not channels:
            problems.append("no channels configured (images.channels)")
        posted = f"posted to {', '.join(delivered)}; " if delivered else ""
        if path is None:
            reason = f"{posted}not posted to {'; '.join(problems)}. The image could not be kept on disk and is lost"
            state = repo.UPLOAD_LOST
        else:
            reason = f"{posted}not posted to {'; '.join(problems)}. The image is kept at {path}; {RETRY_HINT}"
            state = repo.UPLOAD_PENDING
        return await repo.change(
            self._sessions,
            row.id,
            now=self._now(),
            status="failed",
            error=short(reason, 2000),
            upload_state=state,
            **common,
        )

    async def _retry_one(self, row: GeneratedImage) -> bool:
        path = Path(row.local_path) if row.local_path else None
        if path is None or not path.is_file():
            reason = f"the kept image file {path} is missing, so it cannot be posted"
            log.error("weekly image %s: %s", row.slot_key, reason)
            await repo.change(self._sessions, row.id, now=self._now(), upload_state=repo.UPLOAD_LOST, error=reason)
            return False
        if not self._config.current.images.channels:
            log.warning("weekly image %s: kept image waits for a channel in images.channels", row.slot_key)
            await repo.change(self._sessions, row.id, now=self._now(), upload_state=repo.UPLOAD_PENDING)
            return False
        data = path.read_bytes()
        plan = self._plan_from_row(row)
        extension = path.suffix.lstrip(".") or "png"
        log.info("weekly image %s: retrying the upload of the kept image %s", row.slot_key, path)
        updated = await self.deliver(row, plan=plan, data=data, extension=extension, path=path)
        return updated.upload_state == repo.UPLOAD_DONE

    def _plan_from_row(self, row: GeneratedImage) -> ImagePlan:
        images = self._config.current.images
        created = row.created_at or self._now()
        day = local_day(moment=created, timezone=images.schedule.timezone)
        occasion = row.occasion
        milestone = occasion.removeprefix("milestone: ") if occasion and occasion.startswith("milestone: ") else None
        modifier = next((o.modifier for o in images.occasions if o.name == occasion), None)
        return ImagePlan(
            day=day,
            season=season_for(day=day, hemisphere=images.hemisphere),
            theme=row.theme or "",
            occasion=occasion,
            prompt=row.prompt,
            occasion_modifier=modifier,
            milestone=milestone,
        )

    def _storage_dir(self, images: ImagesConfig) -> Path:
        """storage_dir, relative to the data directory (never the config folder, which may be read-only)."""
        directory = Path(images.storage_dir).expanduser()
        return directory if directory.is_absolute() else self._data_dir / directory

    @staticmethod
    def _discard(path: Path | None) -> None:
        if path is None:
            return
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete the posted image %s: %s", path, exc.strerror or exc)
