"""The chat pipeline: accept (store once, before the ack) and answer (after the ack, exactly once).

accept:  classify -> dedupe + store the person's message (unique keys) -> schedule answer
answer:  claim -> names -> history -> trim -> input contracts -> thinking status -> provider chain
         -> output contracts -> mark posting -> post to Slack -> store reply + one ledger row per provider tried
streamed (streaming.enabled): the reply grows in Slack as the model writes it, each prefix checked first;
         posting is marked before the first words show, and the final text (or a fallback line) replaces it
Any failure becomes an in-character fallback; the person's message is already safe in the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_exponential

from bot.chat import channels_logic, history_logic, memory_logic
from bot.chat.events_logic import DeletedMessage, EditedMessage, Ignored, IncomingMessage, classify_event
from bot.chat.guards import ChatGuards
from bot.chat.ledger_logic import ledger_cost, ledger_rows
from bot.chat.limits_logic import ANSWER, SLOW_DOWN
from bot.chat.memory_service import SummaryKeeper
from bot.chat.pictures_logic import picture_idea
from bot.chat.ports import ChatPlatform, ReplyTarget, ThinkingIndicator
from bot.chat.prompting import ContractsProvider, Prepared, PromptPreparer
from bot.chat.reply_logic import has_words
from bot.chat.thread_context import read_thread_context
from bot.config.live import LiveConfig
from bot.errors import SlackDeliveryError
from bot.llm.chain_logic import resolve_chain, worst_case_seconds
from bot.llm.fallbacks import pick_line
from bot.llm.gateway import ChatGateway, ChatResult
from bot.logging_setup import conversation_id_var, event_id_var
from bot.store import channel_repo, chat_repo, privacy_repo
from bot.store.models import utcnow
from bot.store.units import NORMAL, URGENT, UnitRunner

log = logging.getLogger(__name__)
T = TypeVar("T")
# Takes a picture request (bot.images.requests.PictureDesk.accept): user_id, channel_id, ts, thread_ts, idea.
PictureHandler = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class _Answer:
    text: str
    sender: str  # "bot" | "fallback"
    result: ChatResult | None = None


def _transient_db_error(error: BaseException) -> bool:
    if isinstance(error, IntegrityError):
        return False
    if isinstance(error, OperationalError | InterfaceError | OSError | ConnectionError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def _log_database_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    reason = str(getattr(error, "orig", None) or error).splitlines()[0] if error else "?"
    log.warning("database unavailable (%s: %s); retrying", type(error).__name__, reason[:200])


class ChatService:
    def __init__(
        self,
        *,
        config: LiveConfig,
        store: UnitRunner,
        platform: ChatPlatform,
        gateway: ChatGateway,
        contracts: ContractsProvider | None = None,
        rng: random.Random | None = None,
        accept_db_retry_seconds: float = 1.5,
        answer_db_retry_seconds: float = 60.0,
        stale_after: dt.timedelta | None = None,
        guards: ChatGuards | None = None,
        pictures: PictureHandler | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._platform = platform
        self._gateway = gateway
        self._contracts = contracts
        self._rng = rng or random.Random()
        self._accept_db_retry = accept_db_retry_seconds
        self._answer_db_retry = answer_db_retry_seconds
        self._stale_after = stale_after
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()  # channel notes
        self.pictures = pictures
        self._prompting = PromptPreparer(config=config, contracts=contracts)
        self.guards = guards or ChatGuards(config=config)
        self.memory = SummaryKeeper(
            config=config, store=store, gateway=gateway, prompting=self._prompting, contracts=contracts
        )

    # ----- database with retries for transient trouble (a restarting PostgreSQL, a locked SQLite)
    async def _db(self, work: Callable[[Connection], T], *, within: float, priority: int = NORMAL) -> T:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient_db_error),
            stop=stop_after_delay(within),
            wait=wait_exponential(multiplier=0.1, max=2),
            before_sleep=_log_database_retry,
            reraise=True,
        ):
            with attempt:
                return await self._store.run(work, priority=priority)
        raise AssertionError("unreachable")  # pragma: no cover

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
        if idea is not None and self.pictures is not None and channel.pictures and not incoming.only_if_lukas_in_thread:
            outcome = await self.pictures(
                user_id=incoming.user_id,
                channel_id=incoming.channel_id,
                ts=incoming.ts,
                thread_ts=incoming.reply_thread_ts,
                idea=idea,
            )
            return f"picture request: {outcome}"
        token_count = self._prompting.count(incoming.text)
        result = await self._db(
            lambda s: chat_repo.accept_message(s, incoming, token_count=token_count),
            within=self._accept_db_retry,
            priority=URGENT,
        )
        if isinstance(result, chat_repo.Rejected):
            log.info("not answering %s event in %s: %s", event_type, incoming.channel_id, result.reason)
            return result.reason
        conversation_id_var.set(result.conversation_id)
        log.info("accepted a message from %s in %s", incoming.user_id, incoming.channel_id)
        self.guards.judge(
            message_id=result.message_id,
            user_id=incoming.user_id,
            conversation_id=result.conversation_id,
            channel=channel.limits,
        )
        self.schedule(result.message_id)
        return "accepted"

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

    def schedule(self, message_id: int) -> None:
        if message_id in self._tasks:
            return
        if not self.guards.room_for(len(self._tasks)):
            log.warning(
                "busy (%d answers in flight or queued, limits:): message %s is left to the sweeper",
                len(self._tasks),
                message_id,
            )
            return
        task = asyncio.create_task(self.answer(message_id), name=f"answer-{message_id}")
        self._tasks[message_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(message_id, None))

    @property
    def config(self) -> LiveConfig:
        return self._config

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float) -> None:
        """Wait for answers in progress (at shutdown); unfinished ones are picked up by the next sweep."""
        pending = [*self._tasks.values(), *self._side_tasks]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    # ----- answer: after the ack
    async def answer(self, message_id: int, *, stale_before: dt.datetime | None = None) -> None:
        """Answer a message this worker accepted, or (with `stale_before`) take over an abandoned one."""
        async with self.guards.gate:
            await self._answer(message_id, stale_before=stale_before)

    async def _answer(self, message_id: int, *, stale_before: dt.datetime | None) -> None:
        try:
            if stale_before is not None:
                taken = await self._db(
                    lambda s: chat_repo.claim_stale(s, message_id, stale_before=stale_before),
                    within=self._answer_db_retry,
                )
                if not taken:
                    return
            config = self._config.current
            history_size = config.llm.history_size
            if config.memory.enabled:  # room for messages that fell out but are not in the summary yet
                history_size += config.memory.refresh_after_messages - 1

            def load(s: Connection) -> tuple[chat_repo.ClaimedMessage, frozenset[str]]:
                return (
                    chat_repo.load_claimed(s, message_id, history_size=history_size),
                    privacy_repo.participants(s, message_id),
                )

            claimed, people = await self._db(load, within=self._answer_db_retry)
            if not claimed.conversation.thread_read and await read_thread_context(
                claimed, platform=self._platform, prompting=self._prompting, config=self._config.current, db=self.run_db
            ):
                claimed, people = await self._db(load, within=self._answer_db_retry)
            async with self.guards.channel_gate(claimed.conversation.channel_id):
                await self._answer_claimed(claimed, people)
        except Exception:
            log.exception("answering message %s failed; it stays in the database for the next sweep", message_id)

    async def _answer_claimed(self, claimed: chat_repo.ClaimedMessage, people: frozenset[str]) -> None:
        config = self._config.current
        conversation = claimed.conversation
        event_id_var.set(claimed.event_id)
        conversation_id_var.set(conversation.id)
        if claimed.erased:
            log.info("message %s was deleted before Lukas answered it; not answering", claimed.id)
            await self._record(claimed, _Answer("", "bot"), None, state=chat_repo.DONE)
            return
        verdict = self.guards.verdict_for(claimed.id)
        if verdict != ANSWER or await self.guards.over_budget(self.run_db):
            await self._answer_guarded(claimed, verdict)
            return
        name = claimed.user_name
        if name is None and claimed.user_id:
            name = await self._platform.display_name(claimed.user_id)
        history = [replace(m, user_name=name) if m.id == claimed.id else m for m in claimed.history]
        summary = claimed.summary if config.memory.enabled else None
        if config.memory.enabled:
            window = memory_logic.answer_window(
                messages=history,
                boundary=memory_logic.Boundary(summary.through_message_id, summary.through_context)
                if summary
                else None,
                history_size=config.llm.history_size,
                refresh_after=config.memory.refresh_after_messages,
            )
        else:
            window = history_logic.select_window(messages=history, history_size=config.llm.history_size)
        channel = channels_logic.settings_for(
            config=config,
            channel_id=conversation.channel_id,
            is_dm=channels_logic.is_dm_channel(conversation.channel_id),
        )
        prompt, new_counts = history_logic.build_prompt(
            system_prompt=channels_logic.system_prompt_for(
                base=config.persona.system_prompt, addendum=channel.persona_addendum
            ),
            window=window,
            count=self._prompting.count,
            count_name=self._prompting.count_name,
            count_system=self._prompting.count_cached,
        )
        prepared = self._prompting.prepare(
            prompt,
            summary=memory_logic.summary_message(text=summary.text, tokens=summary.token_count) if summary else None,
        )
        if prepared.refusal is not None:
            log.warning("message refused by the input checks: %s", prepared.refusal)

        async def mark_posting() -> None:
            """The last write before anything is visible in Slack: from here on it is never posted again."""
            await self._db(
                lambda s: chat_repo.mark_posting(
                    s, claimed.id, user_name=name, flag_reason=prepared.refusal, counts=new_counts
                ),
                within=self._answer_db_retry,
            )

        if prepared.refusal is not None:
            answer = _Answer(self._line(config.fallbacks.refusal_lines, conversation.last_fallback), "fallback")
            timestamps = await self._post_whole(answer.text, conversation, mark_posting, people)
        else:
            status = self._thinking_status(claimed)
            try:
                if channel.streaming:
                    answer, timestamps = await self._answer_streamed(
                        claimed, prepared, mark_posting, people, chain_names=channel.chain
                    )
                else:
                    answer = self._judge(
                        await self._gateway.complete(
                            prepared.messages, prompt_tokens=prepared.prompt_tokens, chain_names=channel.chain
                        ),
                        last_fallback=conversation.last_fallback,
                        people=people,
                    )
                    timestamps = await self._post_whole(answer.text, conversation, mark_posting, people)
            finally:
                if status is not None:
                    await status.clear()
        await self._record(claimed, answer, timestamps)
        self.memory.nudge(conversation.id)  # the summary is refreshed in the background, after the reply

    async def run_db(self, work: Callable[[Connection], T]) -> T:
        """One unit of work on the chat store, with the answer path's retries (privacy jobs and commands use it)."""
        return await self._db(work, within=self._answer_db_retry)

    async def _answer_guarded(self, claimed: chat_repo.ClaimedMessage, verdict: str) -> None:
        """Over a limit or over the budget: a slow-down or resting line (or, later in the window, nothing), and
        no model call. The message stays stored, flagged so it stays out of future prompts."""
        config = self._config.current
        conversation = claimed.conversation
        reason = "over the chat budget" if verdict == ANSWER else "over a limit"
        lines = config.limits.resting_lines if verdict == ANSWER else config.limits.slow_down_lines

        async def mark_posting() -> None:
            await self._db(
                lambda s: chat_repo.mark_posting(s, claimed.id, user_name=None, flag_reason=reason, counts={}),
                within=self._answer_db_retry,
            )

        if verdict in (ANSWER, SLOW_DOWN):
            answer = _Answer(self._line(lines, conversation.last_fallback), "fallback")
            timestamps = await self._post_whole(answer.text, conversation, mark_posting, frozenset())
        else:  # QUIET: the slow-down line was already said in this window
            await mark_posting()
            answer, timestamps = _Answer("", "fallback"), []
        await self._record(claimed, answer, timestamps)

    async def _answer_streamed(
        self,
        claimed: chat_repo.ClaimedMessage,
        prepared: Prepared,
        mark_posting: Callable[[], Awaitable[None]],
        people: frozenset[str],
        *,
        chain_names: tuple[str, ...] | None = None,
    ) -> tuple[_Answer, list[str] | None]:
        """The reply grows on the platform as the model writes it; the final text (or a fallback line) replaces it."""
        conversation = claimed.conversation
        engine = self._contracts() if self._contracts else None
        target = ReplyTarget(
            conversation.channel_id, conversation.thread_ts or None, claimed.team_id or None, claimed.user_id, people
        )
        writer = self._platform.open_stream(
            target,
            before_first_post=mark_posting,
            guard=(lambda text: engine.check_reply_partial(text).ok) if engine is not None else None,
        )
        try:
            result = await self._gateway.complete(
                prepared.messages, prompt_tokens=prepared.prompt_tokens, on_delta=writer.feed, chain_names=chain_names
            )
        finally:
            await writer.settle()
        stopped = result.stopped or writer.stopped
        answer = self._judge(result, last_fallback=conversation.last_fallback, stopped=stopped, people=people)
        try:
            if answer.sender == "bot":
                return answer, await writer.deliver(answer.text)
            return answer, await writer.replace(answer.text)
        except SlackDeliveryError as exc:
            log.error("could not deliver the streamed reply: %s", exc)
            return answer, None

    async def _post_whole(
        self,
        text: str,
        conversation: chat_repo.ConversationInfo,
        mark_posting: Callable[[], Awaitable[None]],
        people: frozenset[str],
    ) -> list[str] | None:
        """Post the reply in one go (split when long); None when Slack would not take it."""
        await mark_posting()
        try:
            return await self._platform.post_reply(
                ReplyTarget(conversation.channel_id, conversation.thread_ts or None, participants=people), text
            )
        except SlackDeliveryError as exc:
            log.error("could not deliver the reply: %s", exc)
            return None

    async def _record(
        self,
        claimed: chat_repo.ClaimedMessage,
        answer: _Answer,
        timestamps: list[str] | None,
        *,
        state: str | None = None,
    ) -> None:
        """Store the reply (or fallback) with one ledger row per provider tried, and close the question."""
        conversation = claimed.conversation
        calls = ledger_rows(result=answer.result, conversation_id=conversation.id)
        self.guards.add_spending(ledger_cost(calls))
        delivered = timestamps is not None
        reply_tokens = self._prompting.count(answer.text) if delivered and answer.sender == "bot" else None
        await self._db(
            lambda s: chat_repo.record_reply(
                s,
                question_id=claimed.id,
                conversation=conversation,
                sender=answer.sender,
                text=answer.text if delivered and answer.text else None,
                slack_ts=timestamps[0] if timestamps else None,
                token_count=reply_tokens,
                llm_call=calls,
                state=state or (chat_repo.DONE if delivered else chat_repo.FAILED),
            ),
            within=self._answer_db_retry,
        )

    def _thinking_status(self, claimed: chat_repo.ClaimedMessage) -> ThinkingIndicator | None:
        """Show "Lukas is thinking…" while the model works: in the thread, or on the message in a DM's main timeline."""
        thread_ts = claimed.conversation.thread_ts or claimed.ts
        if not thread_ts:
            return None
        return self._platform.show_thinking(channel=claimed.conversation.channel_id, thread_ts=thread_ts)

    def _judge(
        self, result: ChatResult, *, last_fallback: str | None, people: frozenset[str], stopped: bool = False
    ) -> _Answer:
        """The model's reply after the output checks, or a fallback line."""
        config = self._config.current
        fallback = _Answer(self._line(config.fallbacks.lines, last_fallback), "fallback", result)
        if stopped:
            log.warning("the streamed reply was stopped by the output checks; sending a fallback line instead")
            return fallback
        if not result.ok or not (result.text or "").strip():
            return fallback
        text = result.text or ""
        if not has_words(text):
            log.warning("the model's reply is only Markdown punctuation (%r); sending a fallback line", text[:80])
            return fallback
        engine = self._contracts() if self._contracts else None
        if engine is not None:
            checked = engine.check_reply(text)
            if not checked.ok:
                log.warning(
                    "the model's reply failed the output checks (%s); sending a fallback line",
                    "; ".join(checked.reasons),
                )
                return fallback
            text = checked.value
        text = self._platform.make_safe(text, participants=people)  # what is posted is what is stored
        if not text.strip():
            return fallback
        return _Answer(text, "bot", result)

    def _line(self, lines: list[str], last: str | None) -> str:
        return pick_line(lines=lines, last=last, rng=self._rng)

    # ----- the sweeper: nothing accepted is ever forgotten (restarts, crashes, database hiccups)
    def stale_after(self) -> dt.timedelta:
        """How long a claim lasts: longer than the slowest possible answer, so a live worker is never overtaken."""
        if self._stale_after is not None:
            return self._stale_after
        config = self._config.current
        chains = [resolve_chain(config)] + [
            resolve_chain(config, names=tuple(rule.chain)) for rule in config.channels.values() if rule.chain
        ]
        return dt.timedelta(seconds=max(worst_case_seconds(chain) for chain in chains) + 120)

    async def sweep_once(self) -> int:
        stale_before = utcnow() - self.stale_after()
        ids = await self._db(lambda s: chat_repo.unanswered(s, stale_before=stale_before), within=self._answer_db_retry)
        started = 0
        for message_id in ids:
            if message_id not in self._tasks and self.guards.room_for(len(self._tasks)):
                task = asyncio.create_task(self.answer(message_id, stale_before=stale_before))
                self._tasks[message_id] = task
                task.add_done_callback(lambda _t, key=message_id: self._tasks.pop(key, None))  # type: ignore[misc]
                started += 1
        if started:
            log.info("sweeper picked up %d unanswered message(s)", started)
        return started

    async def run_sweeper(self, *, interval: float = 15.0) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweeper pass failed; trying again in %.0fs", interval)
            await asyncio.sleep(interval)
