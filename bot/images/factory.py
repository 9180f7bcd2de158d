"""Building the weekly-image job from the process's shared services (used by `lukas run` and `lukas image`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.config.live import LiveConfig
from bot.images.client import ImageClient
from bot.images.job import AlertAdmins, CaptionWriter, WeeklyImageJob


def build_image_client(settings: Any, config: LiveConfig) -> ImageClient:
    """OPENAI_API_KEY / OPENAI_BASE_URL from the environment; SDK retries off (tenacity retries)."""
    return ImageClient.from_settings(settings, timeout=config.current.images.request_timeout_seconds)


def build_job(
    services: Any,
    *,
    caption_writer: CaptionWriter | None = None,
    contracts: Callable[[], Any] | None = None,
    image_client: ImageClient | None = None,
    alert_admins: AlertAdmins | None = None,
    progress: Callable[[str], None] | None = None,
) -> WeeklyImageJob:
    """A WeeklyImageJob over bot.runtime.Services (settings, config, sessions, slack, alerter, contracts)."""
    return WeeklyImageJob(
        config=services.config,
        sessions=services.sessions,
        slack=services.slack,
        image_client=image_client or build_image_client(services.settings, services.config),
        contracts=contracts or services.contracts,
        caption_writer=caption_writer,
        alert_admins=alert_admins or services.alerter.alert,
        data_dir=services.settings.data_dir,
        progress=progress,
    )
