"""The `/lukas` slash command. Answers are ephemeral: quick ones in the ack, slower ones via `respond` after it."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot.admin import commands_logic as logic
from bot.logging_setup import scrub
from bot.slack.format_logic import MARKDOWN_TEXT, render

if TYPE_CHECKING:
    from bot.admin.service import AdminCommands

log = logging.getLogger(__name__)

SORRY = "Oops, my paws slipped while doing that 🐻 The details are in my logs."
NOT_DRAWING_HERE = "My crayons stay in the box in this channel 🐻 Try me in a DM or another channel!"
WORKING_ON_IMAGE = "On it! Painting a fresh picture of myself now 🎨 I'll tell you here when it's posted."


def register_commands(app: AsyncApp, admin: AdminCommands) -> None:
    @app.command("/lukas")
    async def on_lukas(ack: Any, command: dict[str, Any], respond: Any, client: Any) -> None:
        user_id = logic.identified(command.get("user_id"))
        if user_id is None:  # fail closed: never guess who asked (forget would erase someone, admin checks pass)
            log.warning("/lukas refused: the command carries no usable user_id (%r)", command.get("user_id"))
            await ack(**render(logic.UNIDENTIFIED, into="text"), response_type="ephemeral")
            return
        parsed = logic.parse_command(command.get("text"))
        if isinstance(parsed, logic.ParseError):
            await ack(**render(parsed.message, into="text"), response_type="ephemeral")
            return
        admins = admin.config.current.admins
        if not logic.may_run(command=parsed, user_id=user_id, admins=admins):
            log.warning("/lukas %s denied: %s is not an admin (config.yml admins:)", parsed.name, user_id)
            await ack(**render(logic.DENIED, into="text"), response_type="ephemeral")
            return
        if parsed.name == logic.HELP:
            await ack(**render(logic.help_text(is_admin=user_id in admins), into="text"), response_type="ephemeral")
            return
        if parsed.name == logic.DRAW:
            await _draw(ack, admin, command, user_id=user_id, idea=parsed.idea or "")
            return
        log.info("/lukas %s by %s%s", parsed.name, "admin " if user_id in admins else "", user_id)
        # One entry per command, no default: a command never falls through to another one.
        jobs: dict[str, Callable[[], Awaitable[str]]] = {
            logic.FORGET: functools.partial(admin.forget, user_id, confirm=False),
            logic.FORGET_CONFIRM: functools.partial(admin.forget, user_id, confirm=True),
            logic.STATUS: admin.status,
            logic.USAGE: functools.partial(admin.usage, parsed.days or logic.DEFAULT_DAYS),
            logic.RELOAD: admin.reload,
            logic.IMAGE_NOW: admin.image_now,
        }
        work = jobs[parsed.name]
        if parsed.name == logic.IMAGE_NOW:
            await ack(**render(WORKING_ON_IMAGE, into="text"), response_type="ephemeral")
        else:
            await ack()
        reply = _replier(respond, client, channel=command.get("channel_id"), user=user_id)
        admin.spawn(_answer(parsed.name, work, reply), name=f"/lukas {parsed.name}")


async def _draw(ack: Any, admin: AdminCommands, command: dict[str, Any], *, user_id: str, idea: str) -> None:
    """`/lukas draw <idea>`: claimed before the ack (quota, budget, request key), drawn after it."""
    from bot.chat.channels_logic import is_dm_channel, settings_for

    desk = getattr(admin, "pictures", None)
    config = admin.config.current
    channel_id = command.get("channel_id") or ""
    rule = settings_for(config=config, channel_id=channel_id, is_dm=is_dm_channel(channel_id))
    if desk is None or not rule.enabled or not rule.pictures:
        log.info("/lukas draw by %s in %s: pictures are off there (pictures: / channels:)", user_id, channel_id)
        await ack(text=NOT_DRAWING_HERE, response_type="ephemeral")
        return
    trigger = command.get("trigger_id") or f"{user_id}:{uuid.uuid4().hex}"  # the key must not hold the idea
    try:
        outcome = await desk.draw_command(user_id=user_id, channel_id=channel_id, trigger=trigger, idea=idea)
    except Exception:
        log.exception("/lukas draw failed")
        await ack(text=SORRY, response_type="ephemeral")
        return
    log.info("/lukas draw by %s in %s: %s", user_id, channel_id, outcome)
    if outcome == "claimed":
        await ack(text=config.pictures.working_line, response_type="ephemeral")
    else:  # a resting line (quota or budget) is already on its way to the channel; a duplicate says nothing
        await ack()


def _replier(respond: Any, client: Any, *, channel: str | None, user: str | None) -> Callable[[str], Awaitable[None]]:
    """Post an ephemeral answer: to the command's response_url, else as chat.postEphemeral."""

    async def reply(text: str) -> None:
        text, asker = scrub(text), frozenset({user} if user else ())
        if getattr(respond, "response_url", None):
            await respond(**render(text, into="text", allowed_user_ids=asker), response_type="ephemeral")
        elif channel and user:
            rendered = render(text, into=MARKDOWN_TEXT, allowed_user_ids=asker)
            await client.chat_postEphemeral(channel=channel, user=user, **rendered)
        else:
            log.error("cannot answer /lukas: no response_url and no channel")

    return reply


async def _answer(name: str, work: Callable[[], Awaitable[str]], reply: Callable[[str], Awaitable[None]]) -> None:
    try:
        text = await work()
    except Exception:
        log.exception("/lukas %s failed", name)
        text = SORRY
    try:
        await reply(text)
    except Exception as exc:
        log.error("could not send the /lukas %s answer to Slack: %s", name, type(exc).__name__)
