"""The `images:` section of config.yml: schedule, model, prices, themes and occasions (seed 002)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")

SEASONS = ("winter", "spring", "summer", "autumn")
QUALITIES = ("low", "medium", "high", "xhigh", "max", "auto", "standard", "hd")

# Seed 002's theme and occasion tables: the defaults when config.yml does not list its own.
SEED_THEMES = {
    "autumn": "surrounded by colorful fall leaves, warm golden lighting",
    "winter": "in a cozy winter scene with snow, wearing a scarf",
    "spring": "among blooming flowers, bright cheerful colors",
    "summer": "enjoying sunshine, picnic setting",
    "science": "in a research lab, surrounded by beakers and books",
    "celebration": "holding balloons, confetti, festive atmosphere",
}
SEED_MILESTONE_MODIFIER = "giving a thumbs up, achievement celebration"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleConfig(Strict):
    cron: str = "0 10 * * mon"
    timezone: str = "UTC"
    grace_minutes: int = Field(default=360, ge=0, le=7 * 24 * 60)

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
    """US dollars for one image of this model, size and quality."""

    model: str = Field(min_length=1)
    size: str = Field(min_length=1)
    quality: str = Field(min_length=1)
    usd: float = Field(ge=0, le=100)


class ImageTokenPrice(Strict):
    """US dollars per one million tokens, used when the image API reports usage (GPT image models)."""

    text_input: float = Field(ge=0)
    image_input: float | None = Field(default=None, ge=0)  # default: the text_input price
    output: float = Field(ge=0)


class Occasion(Strict):
    """A yearly date range (MM-DD, inclusive; may wrap the new year)."""

    name: str = Field(min_length=1, max_length=64)
    start: str
    end: str
    modifier: str = Field(min_length=1)
    theme: str | None = None  # None: the season of the date

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
    name: str = Field(min_length=1, max_length=50)
    date: dt.date
    modifier: str = SEED_MILESTONE_MODIFIER
    days_around: int = Field(default=3, ge=0, le=31)


SEED_OCCASIONS = [
    Occasion(
        name="halloween", start="10-24", end="10-31", modifier="with friendly jack-o-lanterns, autumn decorations"
    ),
    Occasion(name="thanksgiving", start="11-21", end="11-28", modifier="with a pie and grateful expression"),
    Occasion(name="holiday", start="12-10", end="12-31", modifier="with wrapped presents and holiday lights"),
]


class ImagesConfig(Strict):
    enabled: bool = True
    schedule: ScheduleConfig = ScheduleConfig()
    channels: list[str] = []
    model: str = Field(default="gpt-image-2", min_length=1)
    size: str = "1024x1024"
    quality: str = "medium"
    request_timeout_seconds: float = Field(default=120.0, gt=0, le=900)
    prices: list[ImagePrice] = []
    token_prices: dict[str, ImageTokenPrice] = {}
    monthly_budget_usd: float = Field(default=5.0, ge=0)
    hemisphere: Literal["north", "south"] = "north"
    base_prompt: str = Field(default="A friendly stuffed teddy bear mascot named Lukas", min_length=1)
    style_modifiers: list[str] = [
        "whimsical illustration style",
        "warm and inviting atmosphere",
        "family-friendly",
        "high quality digital art",
    ]
    themes: dict[str, str] = dict(SEED_THEMES)
    occasions: list[Occasion] = list(SEED_OCCASIONS)
    milestones: list[Milestone] = []
    storage_dir: str = Field(default="images", min_length=1)  # relative to the data directory
    download_timeout_seconds: float = Field(default=30.0, gt=0)
    download_max_bytes: int = Field(default=20_000_000, gt=0)

    @field_validator("size")
    @classmethod
    def _size_shape(cls, value: str) -> str:
        if value != "auto" and not re.fullmatch(r"\d{2,5}x\d{2,5}", value):
            raise ValueError(f"{value!r} is not an image size like '1024x1024' (or 'auto')")
        return value

    @field_validator("quality")
    @classmethod
    def _known_quality(cls, value: str) -> str:
        if value not in QUALITIES:
            raise ValueError(f"{value!r} is not an image quality; use one of {', '.join(QUALITIES)}")
        return value

    @field_validator("channels")
    @classmethod
    def _channel_ids(cls, channels: list[str]) -> list[str]:
        for channel in channels:
            if not _CHANNEL_ID.match(channel):
                raise ValueError(
                    f"{channel!r} is not a Slack channel ID (they look like 'C0123ABCD'; in Slack: channel "
                    "name > About > Channel ID)"
                )
        if len(set(channels)) != len(channels):
            raise ValueError("a channel is listed twice")
        return channels

    @field_validator("themes")
    @classmethod
    def _themes_complete(cls, themes: dict[str, str]) -> dict[str, str]:
        missing = [season for season in SEASONS if season not in themes]
        if missing:
            raise ValueError(
                f"themes must describe every season (missing: {', '.join(missing)}): the season is chosen by date"
            )
        if not any(name not in SEASONS for name in themes):
            raise ValueError(
                "themes needs at least one theme besides the four seasons (e.g. science), so consecutive "
                "weeks can differ"
            )
        for name, modifier in themes.items():
            if not modifier.strip():
                raise ValueError(f"theme {name!r} has an empty description")
        return themes

    @model_validator(mode="after")
    def _consistent(self) -> ImagesConfig:
        for occasion in self.occasions:
            if occasion.theme is not None and occasion.theme not in self.themes:
                raise ValueError(
                    f"occasion {occasion.name!r} names unknown theme {occasion.theme!r} "
                    f"(known: {', '.join(self.themes)})"
                )
        seen = set()
        for price in self.prices:
            key = (price.model, price.size, price.quality)
            if key in seen:
                raise ValueError(f"prices lists {price.model} {price.size} {price.quality} twice")
            seen.add(key)
        return self
