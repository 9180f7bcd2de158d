"""Fixtures for the weekly-image tests: a database per backend, the loopback stand-ins, a test config, a job."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config.live import LiveConfig
from bot.config.loader import parse_config
from bot.images.client import ImageClient
from bot.images.job import WeeklyImageJob
from bot.images.slots_logic import slot_key
from bot.slack.client import build_web_client
from bot.store.db import create_engine, session_factory
from bot.store.models import Base, GeneratedImage, PictureFile
from tests.helpers import POSTGRES_ENV, SHIPPED_CONFIG, create_postgres_database, drop_postgres_database
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

CHANNEL = "C0BEARS"
ADMIN = "U0ADMIN"
# Monday 23 November 2026, 10:00 Europe/Berlin = 09:00 UTC: a slot of the shipped cron.
SLOT = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
KEY = slot_key(SLOT)


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# The shipped config.yml with a channel, an admin, fast retries and a per-test image folder.
TEST_OVERRIDES: dict[str, Any] = {
    "admins": [ADMIN],
    "retry": {"images": {"attempts": 2, "wait_min_seconds": 0, "wait_max_seconds": 0, "jitter_seconds": 0}},
    "images": {"channels": [CHANNEL], "request_timeout_seconds": 5, "download_timeout_seconds": 5},
}


def config_dict(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(SHIPPED_CONFIG.read_text())
    return deep_merge(deep_merge(raw, TEST_OVERRIDES), overrides or {})


def write_config(directory: Path, overrides: dict[str, Any] | None = None) -> Path:
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(config_dict(overrides), allow_unicode=True))
    return path


def live_config(directory: Path, overrides: dict[str, Any] | None = None) -> LiveConfig:
    path = write_config(directory, overrides)
    return LiveConfig(parse_config(path.read_text(), env={}, source=str(path)), path=path)


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class SleepRecorder:
    """Stands in for asyncio.sleep in the retry loop: records the waits, does not wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class AlertRecorder:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, str]] = []

    async def __call__(self, kind: str, text: str) -> bool:
        self.alerts.append((kind, text))
        return True

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.alerts]


# ----- database: SQLite always, PostgreSQL when $LUKAS_TEST_POSTGRES_URL is set


@pytest.fixture(scope="module")
def _postgres_url() -> Iterator[str | None]:
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        yield None
        return
    url = create_postgres_database(server, prefix="lukas_images")
    try:
        yield url
    finally:
        drop_postgres_database(url)


_POSTGRES_READY: set[str] = set()


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(
    request: pytest.FixtureRequest, tmp_path: Path, _postgres_url: str | None
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lukas.db'}")
        async with eng.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
    else:
        if _postgres_url is None:
            pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
        eng = create_engine(_postgres_url)
        async with eng.begin() as connection:
            if _postgres_url not in _POSTGRES_READY:  # tables once per module's database, then emptied per test
                await connection.run_sync(Base.metadata.create_all)
                _POSTGRES_READY.add(_postgres_url)
            tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


async def all_rows(sessions: async_sessionmaker[AsyncSession]) -> list[GeneratedImage]:
    async with sessions() as session:
        return list((await session.execute(select(GeneratedImage).order_by(GeneratedImage.id))).scalars())


# ----- stand-ins


@pytest.fixture
async def image_api() -> AsyncIterator[OpenAIStandIn]:
    async with OpenAIStandIn() as standin:
        yield standin


@pytest.fixture
async def slack_api() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as standin:
        yield standin


def completions(slack: SlackStandIn) -> list[dict[str, Any]]:
    return [call.params for call in slack.calls_to("files.completeUploadExternal")]


def completed_channels(slack: SlackStandIn) -> list[str]:
    return [params.get("channel_id") for params in completions(slack)]


async def kept_in_database(sessions: async_sessionmaker[AsyncSession]) -> dict[int, bytes]:
    """The bytes of pictures waiting for Slack (picture_files), by generated_images id."""
    async with sessions() as session:
        return {f.image_id: bytes(f.data) for f in (await session.execute(select(PictureFile))).scalars()}


def kept_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "data" / "images"
    return sorted(folder.glob("*")) if folder.exists() else []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(SLOT + dt.timedelta(seconds=1))


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def alerts() -> AlertRecorder:
    return AlertRecorder()


MakeJob = Callable[..., Awaitable[WeeklyImageJob]]


@pytest.fixture
async def make_job(
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    image_api: OpenAIStandIn,
    slack_api: SlackStandIn,
    clock: FakeClock,
    sleeps: SleepRecorder,
    alerts: AlertRecorder,
) -> AsyncIterator[MakeJob]:
    """`await make_job(overrides=..., config=..., **job_kwargs)`: a WeeklyImageJob on the stand-ins."""
    clients: list[ImageClient] = []

    async def make(
        *, overrides: dict[str, Any] | None = None, config: LiveConfig | None = None, base_url: str | None = None,
        **kwargs: Any,
    ) -> WeeklyImageJob:  # fmt: skip
        live = config or live_config(tmp_path, overrides)
        client = ImageClient(api_key="sk-test", base_url=base_url or image_api.base_url, timeout=5)
        clients.append(client)
        options: dict[str, Any] = {
            "config": live,
            "sessions": sessions,
            "slack": build_web_client(token="xoxb-test", api_url=slack_api.api_url),
            "image_client": client,
            "contracts": None,
            "caption_writer": None,
            "alert_admins": alerts,
            "clock": clock,
            "sleep": sleeps,
            "data_dir": tmp_path / "data",
        }
        options.update(kwargs)
        return WeeklyImageJob(**options)

    yield make
    for client in clients:
        await client.aclose()
