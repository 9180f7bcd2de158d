"""Getting a paid picture into Slack: keep the bytes first, post, and retry kept uploads later.

The bytes wait in the database (picture_files), not on a replica's disk: the database is what replicas share and
what backups cover, so any replica can post a picture another one made. Only if the database refuses them are
they written to images.storage_dir on this replica. Rows of the old layout (`local_path` only) are posted by the
replica that has the file, which first moves it into the database; a replica without the file leaves it waiting
("not here" is never "lost"). Weekly pictures and pictures drawn on request are kept and retried alike.

Split from the job so the run (plan, check, budget, generate) and the delivery (storage, Slack, retries) read apart.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config.images_schema import ImagesConfig
from bot.config.live import LiveConfig
from bot.images import repo
from bot.images.caption_logic import alt_text_for, filename_for, title_for
from bot.images.media_logic import ImageKind, sniff
from bot.images.posting import ChannelResult, post_image
from bot.images.request_logic import alt_text_for_request, is_request, request_caption
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
KEEP_UNPOSTED = dt.timedelta(days=30)  # a picture Slack has not taken by then is given up and its bytes deleted
RETRY_HINT = "it will be posted at the next retry (hourly), or now with `lukas image --retry-uploads`"
PNG = ImageKind("png", "image/png")


@dataclass(frozen=True)
class Kept:
    """Where a paid picture waits for Slack: the database (any replica can post it), this replica's disk, or
    nowhere (it could not be kept)."""

    in_database: bool = False
    path: Path | None = None

    @property
    def anywhere(self) -> bool:
        return self.in_database or self.path is not None

    def where(self) -> str:
        if self.in_database:
            return "kept in the database (any replica can post it)"
        return f"kept at {self.path} (only this replica can post it)"


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
        """Post kept pictures Slack does not have yet: weekly ones to every configured channel, requested ones into
        their thread; give up those older than KEEP_UNPOSTED. Returns how many are now fully posted."""
        now = self._now()
        stale_before = now - UPLOAD_STALE
        try:
            await self._expire(now=now, stale_before=stale_before)
            rows = await repo.pending_uploads(self._sessions, stale_before=stale_before)
        except Exception as exc:
            log.error("pictures: cannot look for kept pictures to post: %s", short(exc, 200))
            return 0
        done = 0
        for row in rows:
            try:
                if not await repo.claim_upload(self._sessions, row.id, now=now, stale_before=stale_before):
                    continue  # another run or replica is posting it
                if await self._retry_one(row):
                    done += 1
            except Exception:
                log.exception("picture %s: retrying the upload failed unexpectedly", row.slot_key)
                await safe_change(self._sessions, row.id, now=self._now, upload_state=repo.UPLOAD_PENDING)
        return done

    async def _expire(self, *, now: dt.datetime, stale_before: dt.datetime) -> None:
        days = KEEP_UNPOSTED.days
        reason = f"not posted within {days} days of being made, so the kept picture was deleted"
        keys = await repo.expire_uploads(
            self._sessions, before=now - KEEP_UNPOSTED, stale_before=stale_before, now=now, reason=reason
        )
        for key in keys:
            log.error("picture %s: given up: %s", key, reason)

    async def keep(
        self, row: GeneratedImage, *, data: bytes, kind: ImageKind, images: ImagesConfig, **values: Any
    ) -> tuple[GeneratedImage, Kept]:
        """Keep the paid bytes before any upload, so a failed upload never loses them, and record `values` on the
        row with it: in the database, else (the database refused them) on this replica's disk."""
        try:
            stored = await repo.keep_file(
                self._sessions, row.id, data=data, mime=kind.mime, now=self._now(), upload_state=repo.UPLOAD_RUNNING,
                **values,
            )  # fmt: skip
            return stored, Kept(in_database=True)
        except Exception as exc:
            log.error(
                "picture %s: the database did not take the picture (%d bytes): %s; keeping it on this replica's disk",
                row.slot_key, len(data), short(exc, 200),
            )  # fmt: skip
        path = self._keep_on_disk(key=row.slot_key, extension=kind.extension, data=data, images=images)
        local_path = str(path) if path else None
        stored = await repo.change(
            self._sessions, row.id, now=self._now(), local_path=local_path, upload_state=repo.UPLOAD_RUNNING, **values
        )
        return stored, Kept(path=path)

    def _keep_on_disk(self, *, key: str, extension: str, data: bytes, images: ImagesConfig) -> Path | None:
        directory = self._storage_dir(images)
        path = (directory / filename_for(slot_key=key, extension=extension)).resolve()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(path.suffix + ".part")
            temporary.write_bytes(data)
            os.replace(temporary, path)
        except OSError as exc:
            log.error("picture %s: cannot keep the image in %s: %s", key, directory, exc.strerror or exc)
            return None
        return path

    async def deliver(
        self, row: GeneratedImage, *, plan: ImagePlan, data: bytes, extension: str, kept: Kept, alert: bool = True
    ) -> GeneratedImage:
        """Upload to every configured channel that does not have the picture yet, then record the outcome. Admins
        hear of a failure they must fix on the first attempt (`alert`), not again at every hourly retry."""
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
                    if alert:
                        await self._alert_if_needed(
                            result, f"The weekly bear picture could not be posted to <#{channel}>"
                        )
        missing = [c for c in channels if c not in delivered]
        common = {"channel_id": ",".join(delivered) or None, "slack_file_id": file_id, "slack_permalink": permalink}
        if channels and not missing:
            return await self._posted(row, kept, **common)
        if not channels:
            problems.append("no channels configured (images.channels)")
        posted = f"posted to {', '.join(delivered)}; " if delivered else ""
        return await self._not_posted(row, kept, f"{posted}not posted to {'; '.join(problems)}", **common)

    async def deliver_request(
        self, row: GeneratedImage, *, data: bytes, extension: str, kept: Kept, subject: str, alert: bool = True
    ) -> GeneratedImage:
        """Upload a picture drawn on request into the thread it was asked in (row.channel_id, row.thread_ts)."""
        channel = row.channel_id or ""
        result = await post_image(
            self._slack,
            channel=channel,
            thread_ts=row.thread_ts,
            data=data,
            filename=f"lukas-drawing-{row.id}.{extension}",
            title="A drawing by Lukas" + (f": {subject}" if subject else ""),
            alt_text=alt_text_for_request(subject),
            caption=request_caption(subject=subject, name=None),
        )
        if result.ok:
            log.info("picture request %s: posted (file %s), cost $%.4f", row.slot_key, result.file_id, row.cost_usd)
            return await self._posted(row, kept, slack_file_id=result.file_id, slack_permalink=result.permalink)
        log.error("picture request %s: could not post it to %s: %s", row.slot_key, channel, result.reason)
        if alert:
            await self._alert_if_needed(
                result, f"A picture someone asked Lukas for could not be posted to <#{channel}>"
            )
        return await self._not_posted(row, kept, f"upload failed: {result.reason}")

    async def _posted(self, row: GeneratedImage, kept: Kept, **values: Any) -> GeneratedImage:
        """Slack has it everywhere it belongs: the kept bytes go (database and disk)."""
        done = await repo.change(
            self._sessions, row.id, now=self._now(), forget_file=True, status="succeeded", error=None,
            local_path=None, upload_state=repo.UPLOAD_DONE, **values,
        )  # fmt: skip
        if kept.path is not None:
            self._discard(kept.path)
        return done

    async def _not_posted(self, row: GeneratedImage, kept: Kept, problem: str, **values: Any) -> GeneratedImage:
        if kept.anywhere:
            reason, state = f"{problem}. The image is {kept.where()}; {RETRY_HINT}", repo.UPLOAD_PENDING
        else:
            reason, state = f"{problem}. The image could not be kept and is lost", repo.UPLOAD_LOST
        return await repo.change(
            self._sessions, row.id, now=self._now(), status="failed", error=short(reason, 2000), upload_state=state,
            **values,
        )  # fmt: skip

    async def _alert_if_needed(self, result: ChannelResult, what: str) -> None:
        if result.admin_must_act:
            await self._alert("image_upload", f"{what}: {result.reason}.")

    async def _retry_one(self, row: GeneratedImage) -> bool:
        found = await self._kept_bytes(row)
        if found is None:
            # Not here is not lost: a row of the old layout may be kept on another replica's disk.
            log.warning(
                "picture %s: not on this replica (%s); left waiting for the replica that kept it",
                row.slot_key, row.local_path or "no kept file recorded",
            )  # fmt: skip
            await repo.change(self._sessions, row.id, now=self._now(), upload_state=repo.UPLOAD_PENDING)
            return False
        data, kind, kept = found
        log.info("picture %s: retrying the upload of the image %s", row.slot_key, kept.where())
        if is_request(row.slot_key):
            # The person's idea is not kept beside the bytes (privacy): the retry's caption is the plain one.
            updated = await self.deliver_request(
                row, data=data, extension=kind.extension, kept=kept, subject="", alert=False
            )
        elif not self._config.current.images.channels:
            log.warning("weekly image %s: kept image waits for a channel in images.channels", row.slot_key)
            await repo.change(self._sessions, row.id, now=self._now(), upload_state=repo.UPLOAD_PENDING)
            return False
        else:
            plan = self._plan_from_row(row)
            updated = await self.deliver(row, plan=plan, data=data, extension=kind.extension, kept=kept, alert=False)
        return updated.upload_state == repo.UPLOAD_DONE

    async def _kept_bytes(self, row: GeneratedImage) -> tuple[bytes, ImageKind, Kept] | None:
        """The picture's bytes from the database, else from this replica's disk (the old layout: then moved into
        the database, so any replica can post it from now on); None when neither has them."""
        stored = await repo.kept_file(self._sessions, row.id)
        if stored is not None:
            data = bytes(stored.data)
            return data, sniff(data) or PNG, Kept(in_database=True)
        path = Path(row.local_path) if row.local_path else None
        if path is None or not path.is_file():
            return None
        data = path.read_bytes()
        kind = sniff(data) or PNG
        try:
            await repo.keep_file(self._sessions, row.id, data=data, mime=kind.mime, now=self._now(), local_path=None)
        except Exception as exc:
            log.warning("picture %s: could not move %s into the database: %s", row.slot_key, path, short(exc, 200))
            return data, kind, Kept(path=path)
        self._discard(path)
        return data, kind, Kept(in_database=True)

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
    def _discard(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete the posted image %s: %s", path, exc.strerror or exc)
