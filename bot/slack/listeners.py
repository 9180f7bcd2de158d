"""Where Slack events enter Lukas. Listeners only validate, store and schedule; the answer runs after the ack."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.slack.assistant import register_assistant_listeners

if TYPE_CHECKING:
    from bot.admin.service import AdminCommands
    from bot.chat.service import ChatService
    from bot.slack.home_tab import HomeTab

log = logging.getLogger(__name__)


MESSAGE_EVENTS = ("message", "app_mention")
DirectIntake = Callable[[Any], Awaitable[bool]]


def direct_intake(chat: ChatService, *, auth: Mapping[str, Any]) -> DirectIntake:
    """The hot path for HTTP mode: a signed `event_callback` carrying a message or mention goes straight to the
    chat intake, as Bolt's listener above would pass it, without Bolt's per-request dispatch (listener matching,
    a context and a Web API client per request): at a 200-event burst that dispatch was most of the ack's cost.
    Returns False for everything else (commands, Home tab, assistant events, url_verification), which Bolt
    handles. `auth` is the auth.test answer Bolt is seeded with (bot/slack/auth.py)."""

    async def take(payload: Any) -> bool:
        if not isinstance(payload, dict) or payload.get("type") != "event_callback":
            return False
        event = payload.get("event")
        if not isinstance(event, dict) or event.get("type") not in MESSAGE_EVENTS:
            return False
        await chat.accept_event(
            event=event,
            event_type=str(event["type"]),
            event_id=payload.get("event_id"),
            team_id=payload.get("team_id") or auth.get("team_id"),
            bot_user_id=auth.get("user_id"),
            bot_id=auth.get("bot_id"),
        )
        return True

    return take


def register_listeners(
    app: AsyncApp, chat: ChatService, *, admin: AdminCommands | None = None, home: HomeTab | None = None
) -> None:
    async def on_message_event(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        await chat.accept_event(
            event=event,
            event_type=str(event.get("type", "message")) if isinstance(event, dict) else "message",
            event_id=body.get("event_id"),
            team_id=body.get("team_id") or context.team_id,
            bot_user_id=context.bot_user_id,
            bot_id=context.bot_id,
        )

    if admin is not None:
        from bot.slack.commands import register_commands

        register_commands(app, admin)

    # Socket Mode, and HTTP when auth.test could not be checked at start (else direct_intake takes these first)
    app.event("app_mention")(on_message_event)
    app.event("message")(on_message_event)
    if home is not None:
        from bot.slack.home_tab import register_home_listener

        register_home_listener(app, home)  # tab "home"; before the Messages-tab listener below
    register_assistant_listeners(app, chat.config)  # suggested prompts (AI-app surface); before the catch-all

    @app.error
    async def on_listener_error(error: Exception) -> None:
        # Bolt answers Slack with a 500, so Slack redelivers the event later: nothing is lost.
        log.error(
            "could not take an event (%s: %s); Slack will redeliver it",
            type(error).__name__,
            str(error).splitlines()[0] if str(error) else "",
        )

    @app.event(re.compile(r".*"))
    async def on_other_event(event: dict[str, Any]) -> None:
        # Answering 200 keeps Slack from redelivering events Lukas has no use for.
        log.debug("ignored event type %s", event.get("type") if isinstance(event, dict) else "?")
