"""The `images:` section of config.yml: schedule, model, prices, themes and occasions."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleConfig(Strict):
    cron: str = "0 10 * * mon"
    timezone: str = "UTC"
    grace_minutes: int = Field(default=360, ge=0)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a cron expression (five fields: minute hour day month weekday, "
                f"e.g. '0 10 * * mon'): {exc}"
            ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone (e.g. 'Europe/Berlin', 'UTC')") from None
        return value


class ImagePrice(Strict):
    model: str
    size: str
    quality: str
    usd: float = Field(ge=0)


class Occasion(Strict):
    """A yearly date range (MM-DD, inclusive; may wrap the new year)."""

    name: str
    start: str
    end: str
    modifier: str
    theme: str | None = None

    @field_validator("start", "end")
    @classmethod
    def _month_day(cls, value: str) -> str:
        match = _MONTH_DAY.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a month-day like '10-31'")
        try:
            dt.date(2024, int(match[1]), int(match[2]))
        except ValueError:
            raise ValueError(f"{value!r} is not a real day of the year") from None
        return value


class Milestone(Strict):
    name: str
    date: dt.date
    modifier: str = "giving a thumbs up, achievement celebration"
    days_around: int = Field(default=3, ge=0, le=31)


class ImagesConfig(Strict):
    enabled: bool = True
    schedule: ScheduleConfig = ScheduleConfig()
    channels: list[str] = []
    model: str = "gpt-image-2"
    size: str = "1024x1024"
    quality: str = "medium"
    prices: list[ImagePrice] = []
    monthly_budget_usd: float = Field(default=5.0, ge=0)
    hemisphere: Literal["north", "south"] = "north"
    base_prompt: str = "A friendly stuffed teddy bear mascot named Lukas"
    style_modifiers: list[str] = [
        "whimsical illustration style",
        "warm and inviting atmosphere",
        "family-friendly",
        "high quality digital art",
    ]
    themes: dict[str, str] = {}
    occasions: list[Occasion] = []
    milestones: list[Milestone] = []
    storage_dir: str = "./data/images"
    download_timeout_seconds: float = Field(default=30.0, gt=0)
    download_max_bytes: int = Field(default=20_000_000, gt=0)

    @field_validator("size")
    @classmethod
    def _size_shape(cls, value: str) -> str:
        if value != "auto" and not re.fullmatch(r"\d{3,4}x\d{3,4}", value):
            raise ValueError(f"{value!r} is not an image size like '1024x1024' (or 'auto')")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ImagesConfig:
        for occasion in self.occasions:
            if occasion.theme is not None and occasion.theme not in self.themes:
                raise ValueError(f"occasion {occasion.name!r} names unknown theme {occasion.theme!r}")
        seen = set()
        for price in self.prices:
            key = (price.model, price.size, price.quality)
            if key in seen:
                raise ValueError(f"prices lists {key} twice")
            seen.add(key)
        return self
