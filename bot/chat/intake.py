"""Accept: runs before Slack's ack, so it only classifies, stores (exactly once) and schedules the answer.
Edits and deletions are applied to what is stored, never answered; disabled channels get their note once."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any

from bot.chat import channels_logic
from bot.chat.batching import GroupWriter
from bot.chat.events_logic import DeletedMessage, EditedMessage, Ignored, IncomingMessage, classify_event
from bot.chat.limits_logic import ANSWER
from bot.chat.pictures_logic import picture_idea
from bot.chat.pipeline_base import ChatBase
from bot.chat.ports import ReplyTarget
from bot.errors import SlackDeliveryError
from bot.logging_setup import conversation_id_var, event_id_var
from bot.store import accept_repo, channel_repo, chat_repo
from bot.store.accept_repo import Accepted, Rejected, ToAccept
from bot.store.leases import Lease
from bot.store.units import URGENT

log = logging.getLogger(__name__)


class ChatIntake(ChatBase):
    # ----- accept: runs before the ack, so it only stores and schedules
    async def accept_event(
        self,
        *,
        event: Any,
        event_type: str,
        event_id: str | None,
        team_id: str | None,
        bot_user_id: str | None,
        bot_id: str | None,
    ) -> str:
        """Returns "accepted" or the reason the event was not taken. Raises only when the database is down
        (so Slack gets an error and redelivers: the message is not lost)."""
        with self.intake_busy():
            event_id_var.set(event_id)
            decision = classify_event(
                event=event,
                event_type=event_type,
                bot_user_id=bot_user_id,
                bot_id=bot_id,
                event_id=event_id,
                team_id=team_id,
            )
            if isinstance(decision, Ignored):
                log.debug("ignored %s event: %s", event_type, decision.reason)
                return decision.reason
            if isinstance(decision, EditedMessage | DeletedMessage):
                return await self._apply_change(decision)
            incoming: IncomingMessage = decision
            config = self._config.current
            channel = channels_logic.settings_for(
                config=config, channel_id=incoming.channel_id, is_dm=incoming.kind == "dm"
            )
            intake = channels_logic.decide_intake(
                settings=channel,
                mentioned=not incoming.only_if_lukas_in_thread,  # DMs always speak to Lukas
                follow_up=incoming.only_if_lukas_in_thread,
            )
            if intake.action == channels_logic.IGNORE:
                log.info("not answering %s event in %s: %s", event_type, incoming.channel_id, intake.reason)
                return intake.reason
            if intake.action == channels_logic.NOTE:
                return await self._note_once(incoming, channel.disabled_note)
            idea = picture_idea(incoming.text, max_chars=config.pictures.max_idea_chars)
            wants_picture = channel.pictures and not incoming.only_if_lukas_in_thread
            if idea is not None and self.pictures is not None and wants_picture:
                outcome = await self.pictures(
                    user_id=incoming.user_id,
                    channel_id=incoming.channel_id,
                    ts=incoming.ts,
                    thread_ts=incoming.reply_thread_ts,
                    idea=idea,
                )
                return f"picture request: {outcome}"
            asked_at = self.keeper.now()
            rules = self.guards.rules(user_id=incoming.user_id, channel_id=incoming.channel_id, channel=channel.limits)
            result = await self._accepts.submit(ToAccept(incoming, self._prompting.count(incoming.text), rules))
            if isinstance(result, Rejected):
                self._on_event("rejected")
                log.info("not answering %s event in %s: %s", event_type, incoming.channel_id, result.reason)
                return result.reason
            conversation_id_var.set(result.conversation_id)
            self._on_event("accepted")
            log.info("accepted a message from %s in %s", incoming.user_id, incoming.channel_id)
            self.keeper.hold(Lease(result.message_id, result.epoch), asked_at=asked_at)
            if result.verdict != ANSWER:
                log.warning(
                    "message %s from %s is over a limit (limits:): %s",
                    result.message_id,
                    incoming.user_id,
                    result.verdict,
                )
            self.schedule(result.message_id)
            return "accepted"

    @functools.cached_property
    def _conversation_ids(self) -> dict[accept_repo.ConversationKey, int]:
        """Conversation ids this process has seen (rows are never deleted): a known conversation costs no read."""
        return {}

    @functools.cached_property
    def _accepts(self) -> GroupWriter[ToAccept, Accepted | Rejected]:
        return GroupWriter(self._write_accepts)

    async def _write_accepts(self, batch: Sequence[ToAccept]) -> list[Accepted | Rejected]:
        """Stores the messages that arrived together, in one transaction (a burst costs a few, not hundreds)."""
        ttl = self.keeper.ttl
        return await self._db(
            lambda s: accept_repo.accept_messages(
                s,
                batch,
                owner=self.instance_id,
                lease_ttl=ttl,
                judge=self.guards.judge,
                conversation_ids=self._conversation_ids,
            ),
            within=self._accept_db_retry,
            priority=URGENT,
        )

    async def _apply_change(self, change: EditedMessage | DeletedMessage) -> str:
        """Apply an edit or a deletion to the stored message. Never answered (no reply loops)."""
        if isinstance(change, DeletedMessage):
            done = await self._db(
                lambda s: chat_repo.erase_message(s, channel_id=change.channel_id, ts=change.ts),
                within=self._accept_db_retry,
                priority=URGENT,
            )
            own = change.by_lukas or done.sender in ("bot", "fallback")
            whose = "one of Lukas's own messages" if own else "a message"
            level = logging.INFO if done.outcome == "erased" else logging.DEBUG
            log.log(level, "%s in %s was deleted in Slack: %s", whose, change.channel_id, done.outcome)
            return f"deletion: {done.outcome}"
        if not change.text:
            return await self._apply_change(DeletedMessage(change.channel_id, change.ts, by_lukas=False))
        tokens = self._prompting.count(change.text)
        done = await self._db(
            lambda s: chat_repo.apply_edit(
                s, channel_id=change.channel_id, ts=change.ts, text=change.text, token_count=tokens
            ),
            within=self._accept_db_retry,
            priority=URGENT,
        )
        level = logging.INFO if done.outcome == "updated" else logging.DEBUG
        log.log(level, "a message in %s was edited in Slack: %s", change.channel_id, done.outcome)
        return f"edit: {done.outcome}"

    async def _note_once(self, incoming: IncomingMessage, note: str) -> str:
        """In a channel where Lukas is not enabled: his short note, once per thread (a unique key decides)."""
        thread = incoming.reply_thread_ts  # None: a DM's main timeline (one note for all of it)
        first = await self._db(
            lambda s: channel_repo.claim_note(
                s, team_id=incoming.team_id, channel_id=incoming.channel_id, thread_ts=incoming.conversation_thread_ts
            ),
            within=self._accept_db_retry,
            priority=URGENT,
        )
        if not first:
            return "channel not enabled; this thread already has the note"

        async def post() -> None:
            try:
                await self._platform.post_reply(ReplyTarget(incoming.channel_id, thread), note)
            except SlackDeliveryError as exc:
                log.error("could not post the channel note in %s: %s", incoming.channel_id, exc)

        task = asyncio.create_task(post(), name="channel-note")
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
        log.info("channel %s is not enabled for Lukas: posting the note (thread %s)", incoming.channel_id, thread)
        return "channel not enabled; note posted"

    def schedule(self, message_id: int, *, takeover: bool = False, foreign_now: bool = False) -> bool:
        if message_id in self._tasks:
            return False
        if not self.guards.room_for(len(self._tasks)):
            log.warning(
                "busy (%d answers in flight or queued, limits:): message %s is left to the sweeper",
                len(self._tasks),
                message_id,
            )
            self.keeper.drop(message_id)  # its lease runs out, then the sweeper (here or on a replica) takes it
            return False
        answering = self.answer(message_id, takeover=takeover, foreign_now=foreign_now)
        task = asyncio.create_task(answering, name=f"answer-{message_id}")
        self._tasks[message_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(message_id, None))
        return True
