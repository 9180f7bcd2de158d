"""Where Slack events enter Lukas. Listeners only validate, store and schedule; work happens after the ack."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt.async_app import AsyncApp

if TYPE_CHECKING:
    from bot.runtime import Services


def register_listeners(app: AsyncApp, services: Services) -> None:
    """Chat listeners arrive with the chat issue."""
