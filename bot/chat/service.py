"""The chat pipeline: accept (store once, before the ack) and answer (after the ack, exactly once).

accept:  classify -> dedupe + store the person's message (unique keys) -> schedule answer
answer:  claim -> names -> history -> trim -> input contracts -> thinking status -> provider chain
         -> output contracts -> mark posting -> post to Slack -> store reply + one ledger row per provider tried
streamed (streaming.enabled): the reply grows in Slack as the model writes it, each prefix checked first;
         posting is marked before the first words show, and the final text (or a fallback line) replaces it
Any failure becomes an in-character fallback; the person's message is already safe in the database.

Replicas: the claim is a lease (bot.store.leases) renewed by this instance's LeaseKeeper while the answer runs.
Marking `posting`, each post to Slack and recording the reply all require still holding it; a writer that lost it
stops without posting (LeaseLost). The sweeper takes over expired leases; a `posting` one is first looked for in
Slack (the reply's metadata names the question). At shutdown unfinished answers are handed back, not failed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_exponential

from bot.chat import channels_logic, history_logic, memory_logic
from bot.chat.events_logic import DeletedMessage, EditedMessage, Ignored, IncomingMessage, classify_event
from bot.chat.guards import ChatGuards
from bot.chat.lease_keeper import LeaseKeeper
from bot.chat.ledger_logic import ledger_cost, ledger_rows
from bot.chat.limits_logic import ANSWER, SLOW_DOWN
from bot.chat.memory_service import SummaryKeeper
from bot.chat.pictures_logic import picture_idea
from bot.chat.ports import ChatPlatform, ReplyTarget, ThinkingIndicator
from bot.chat.prompting import ContractsProvider, Prepared, PromptPreparer
from bot.chat.reply_logic import has_words
from bot.chat.thread_context import read_thread_context
from bot.config.live import LiveConfig
from bot.errors import LeaseLost, SlackDeliveryError
from bot.llm.fallbacks import pick_line
from bot.llm.gateway import ChatGateway, ChatResult
from bot.logging_setup import conversation_id_var, event_id_var
from bot.store import channel_repo, chat_repo, leases, privacy_repo
from bot.store.leases import Lease
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


def _target(claimed: chat_repo.ClaimedMessage, people: frozenset[str]) -> ReplyTarget:
    """Where the reply goes, who takes part (the only ones a reply may mention), and the question (named on the
    reply, so a reply whose post was interrupted can be found again)."""
    conversation = claimed.conversation
    return ReplyTarget(
        conversation.channel_id,
        conversation.thread_ts or None,
        claimed.team_id or None,
        claimed.user_id,
        people,
        question_id=claimed.id,
        question_ts=claimed.ts,
    )


def new_instance_id() -> str:
    """Names this running Lukas on its leases and heartbeat: host, process and a random part (pids repeat)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


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
        instance_id: str | None = None,
        on_event: Callable[[str], None] | None = None,
        on_model_calls: Callable[[list[dict[str, object]]], None] | None = None,
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
        self.instance_id = instance_id or new_instance_id()
        self.keeper = LeaseKeeper(
            store=store,
            owner=self.instance_id,
            host=socket.gethostname(),
            ttl=lambda: self._config.current.replicas.lease_seconds,
        )
        self._on_event = on_event or (lambda _name: None)  # counters for /metrics
        self._on_model_calls = on_model_calls or (lambda _rows: None)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._posting: set[int] = set()  # answers past the point of no return: never cancelled at shutdown
        self._taking = True  # False once shutting down: no new answers, no take-overs
        # One process on SQLite: at the first sweep every other owner's lease belongs to a process that is gone.
        self._foreign_now = store.dialect == "sqlite"
        self._started_at = utcnow()  # claims of another owner older than this belong to a process that is gone
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
        asked_at, ttl = self.keeper.now(), self.keeper.ttl
        result = await self._db(
            lambda s: chat_repo.accept_message(
                s, incoming, token_count=token_count, owner=self.instance_id, lease_ttl=ttl
            ),
            within=self._accept_db_retry,
            priority=URGENT,
        )
        if isinstance(result, chat_repo.Rejected):
            self._on_event("rejected")
            log.info("not answering %s event in %s: %s", event_type, incoming.channel_id, result.reason)
            return result.reason
        conversation_id_var.set(result.conversation_id)
        self._on_event("accepted")
        log.info("accepted a message from %s in %s", incoming.user_id, incoming.channel_id)
        self.keeper.hold(Lease(result.message_id, result.epoch), asked_at=asked_at)
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

    @property
    def config(self) -> LiveConfig:
        return self._config

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def shutdown(self, *, grace: float, posting_grace: float) -> list[int]:
        """SIGTERM: take nothing new, let answers finish for `grace` seconds, then hand the unfinished ones back
        (their leases expire at once, so any replica, or the next start, answers them with the model). Answers
        already posting are never cut off: they get up to `posting_grace` more to finish. Returns the ids handed
        back."""
        self._taking = False
        pending = [*self._tasks.values(), *self._side_tasks]
        if pending:
            await asyncio.wait(pending, timeout=grace)
        unfinished = {i: t for i, t in self._tasks.items() if i not in self._posting}
        handing = {i: lease.epoch for i in unfinished if (lease := self.keeper.lease(i)) is not None}
        for task in unfinished.values():
            task.cancel()
        await asyncio.gather(*unfinished.values(), return_exceptions=True)
        posting = list(self._tasks.values())
        if posting:
            await asyncio.wait(posting, timeout=posting_grace)
        released = await self._db(
            lambda s: leases.release(s, owner=self.instance_id, held=handing), within=min(self._answer_db_retry, 5)
        )
        if released:
            log.info("handed %d unfinished answer(s) back for another Lukas: %s", len(released), released)
        return released

    async def stuck_counts(self) -> dict[str, int]:
        """Questions stuck in `posting` past the grace (a post that may or may not be in Slack) and `failed` ones."""
        grace = self._config.current.replicas.posting_grace_seconds
        return await self._store.run(lambda s: leases.stuck_counts(s, posting_grace=grace))

    async def drain(self, timeout: float) -> None:
        """Shutdown with the default posting grace (kept for callers of the old name)."""
        await self.shutdown(grace=timeout, posting_grace=self._config.current.replicas.posting_grace_seconds)

    # ----- answer: after the ack
    async def answer(self, message_id: int, *, takeover: bool = False, foreign_now: bool = False) -> None:
        """Answer a message this worker accepted, or (`takeover`) one whose lease ran out."""
        async with self.guards.gate:
            await self._answer(message_id, takeover=takeover, foreign_now=foreign_now)

    async def _answer(self, message_id: int, *, takeover: bool, foreign_now: bool) -> None:
        try:
            lease = await self._take_over(message_id, foreign_now) if takeover else self.keeper.lease(message_id)
            if lease is None:
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
            if lease.state == chat_repo.POSTING and await self._recover_posting(claimed, lease, people):
                return
            if not claimed.conversation.thread_read and await read_thread_context(
                claimed, platform=self._platform, prompting=self._prompting, config=self._config.current, db=self.run_db
            ):
                claimed, people = await self._db(load, within=self._answer_db_retry)
            async with self.guards.channel_gate(claimed.conversation.channel_id):
                await self._answer_claimed(claimed, lease, people)
        except LeaseLost as exc:
            self._on_event("lease_lost")
            log.warning("%s; stopping without posting (the replica holding it answers)", exc)
        except Exception:
            log.exception("answering message %s failed; it is taken over once its lease runs out", message_id)
        finally:
            self.keeper.drop(message_id)
            self._posting.discard(message_id)

    async def _take_over(self, message_id: int, foreign_now: bool) -> Lease | None:
        replicas = self._config.current.replicas
        asked_at = self.keeper.now()
        lease = await self._db(
            lambda s: leases.take_over(
                s,
                message_id,
                owner=self.instance_id,
                ttl=replicas.lease_seconds,
                posting_grace=replicas.posting_grace_seconds,
                foreign_before=self._started_at if foreign_now else None,
            ),
            within=self._answer_db_retry,
        )
        if lease is not None:
            self.keeper.hold(lease, asked_at=asked_at)
            self._on_event("lease_taken_over")
            log.info("took over message %s (%s, lease epoch %d)", message_id, lease.state, lease.epoch)
        return lease

    async def _recover_posting(self, claimed: chat_repo.ClaimedMessage, lease: Lease, people: frozenset[str]) -> bool:
        """A worker vanished while posting: if its reply is in Slack, record it; otherwise answer again."""
        conversation = claimed.conversation
        found = await self._platform.find_reply(_target(claimed, people))
        if found:
            log.info("message %s: its reply is already in Slack; recording it, not posting again", claimed.id)
            text = "\n\n".join(reply.text for reply in found)
            recorded = await self._db(
                lambda s: chat_repo.record_reply(
                    s,
                    lease=lease,
                    owner=self.instance_id,
                    question_id=claimed.id,
                    conversation=conversation,
                    sender="bot",
                    text=text,
                    slack_ts=found[0].ts,
                    token_count=self._prompting.count(text),
                    llm_call=None,
                ),
                within=self._answer_db_retry,
            )
            if not recorded:
                raise LeaseLost(f"lease on message {claimed.id} lost while recording a recovered reply")
            return True
        if not await self._db(lambda s: leases.reopen(s, lease, owner=self.instance_id), within=self._answer_db_retry):
            raise LeaseLost(f"lease on message {claimed.id} lost before answering it again")
        log.info("message %s: no reply in Slack after an interrupted post; answering it again", claimed.id)
        return False

    async def _answer_claimed(self, claimed: chat_repo.ClaimedMessage, lease: Lease, people: frozenset[str]) -> None:
        config = self._config.current
        conversation = claimed.conversation
        event_id_var.set(claimed.event_id)
        conversation_id_var.set(conversation.id)
        if claimed.erased:
            log.info("message %s was deleted before Lukas answered it; not answering", claimed.id)
            nothing = _Answer("", "bot")
            await self._record(claimed, lease, nothing, None, state=chat_repo.DONE, from_state=chat_repo.WORKING)
            return
        verdict = self.guards.verdict_for(claimed.id)
        if verdict != ANSWER or await self.guards.over_budget(self.run_db):
            await self._answer_guarded(claimed, lease, verdict)
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
            await self._mark_posting(claimed, lease, user_name=name, flag_reason=prepared.refusal, counts=new_counts)

        if prepared.refusal is not None:
            answer = _Answer(self._line(config.fallbacks.refusal_lines, conversation.last_fallback), "fallback")
            timestamps = await self._post_whole(answer.text, claimed, mark_posting, people)
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
                    timestamps = await self._post_whole(answer.text, claimed, mark_posting, people)
            finally:
                if status is not None:
                    await status.clear()
        await self._record(claimed, lease, answer, timestamps)
        self.memory.nudge(conversation.id)  # the summary is refreshed in the background, after the reply

    async def run_db(self, work: Callable[[Connection], T]) -> T:
        """One unit of work on the chat store, with the answer path's retries (privacy jobs and commands use it)."""
        return await self._db(work, within=self._answer_db_retry)

    async def _mark_posting(
        self,
        claimed: chat_repo.ClaimedMessage,
        lease: Lease,
        *,
        user_name: str | None,
        flag_reason: str | None,
        counts: dict[int, int],
    ) -> None:
        """The last write before anything is visible in Slack (fenced): from here on it is never posted blindly
        again, and shutdown no longer cuts it off. Raises LeaseLost when another replica holds it now."""
        self._posting.add(claimed.id)
        if not self.keeper.owns(claimed.id):
            raise LeaseLost(f"lease on message {claimed.id} expired before posting")
        marked = await self._db(
            lambda s: chat_repo.mark_posting(
                s, lease, owner=self.instance_id, user_name=user_name, flag_reason=flag_reason, counts=counts
            ),
            within=self._answer_db_retry,
        )
        if not marked:
            raise LeaseLost(f"lease on message {claimed.id} was taken over before posting")

    async def _answer_guarded(self, claimed: chat_repo.ClaimedMessage, lease: Lease, verdict: str) -> None:
        """Over a limit or over the budget: a slow-down or resting line (or, later in the window, nothing), and
        no model call. The message stays stored, flagged so it stays out of future prompts."""
        config = self._config.current
        conversation = claimed.conversation
        reason = "over the chat budget" if verdict == ANSWER else "over a limit"
        lines = config.limits.resting_lines if verdict == ANSWER else config.limits.slow_down_lines

        async def mark_posting() -> None:
            await self._mark_posting(claimed, lease, user_name=None, flag_reason=reason, counts={})

        if verdict in (ANSWER, SLOW_DOWN):
            answer = _Answer(self._line(lines, conversation.last_fallback), "fallback")
            timestamps = await self._post_whole(answer.text, claimed, mark_posting, frozenset())
        else:  # QUIET: the slow-down line was already said in this window
            await mark_posting()
            answer, timestamps = _Answer("", "fallback"), []
        await self._record(claimed, lease, answer, timestamps)

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
        writer = self._platform.open_stream(
            _target(claimed, people),
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
        claimed: chat_repo.ClaimedMessage,
        mark_posting: Callable[[], Awaitable[None]],
        people: frozenset[str],
    ) -> list[str] | None:
        """Post the reply in one go (split when long); None when Slack would not take it."""
        await mark_posting()
        try:
            return await self._platform.post_reply(
                _target(claimed, people), text, still_ours=lambda: self.keeper.owns(claimed.id)
            )
        except SlackDeliveryError as exc:
            log.error("could not deliver the reply: %s", exc)
            return None

    async def _record(
        self,
        claimed: chat_repo.ClaimedMessage,
        lease: Lease,
        answer: _Answer,
        timestamps: list[str] | None,
        *,
        state: str | None = None,
        from_state: str = chat_repo.POSTING,
    ) -> None:
        """Store the reply (or fallback) with one ledger row per provider tried, and close the question."""
        conversation = claimed.conversation
        calls = ledger_rows(result=answer.result, conversation_id=conversation.id)
        self.guards.add_spending(ledger_cost(calls))
        self._on_model_calls(calls)
        delivered = timestamps is not None
        reply_tokens = self._prompting.count(answer.text) if delivered and answer.sender == "bot" else None
        recorded = await self._db(
            lambda s: chat_repo.record_reply(
                s,
                lease=lease,
                owner=self.instance_id,
                question_id=claimed.id,
                conversation=conversation,
                sender=answer.sender,
                text=answer.text if delivered and answer.text else None,
                slack_ts=timestamps[0] if timestamps else None,
                token_count=reply_tokens,
                llm_call=calls,
                state=state or (chat_repo.DONE if delivered else chat_repo.FAILED),
                from_state=from_state,
            ),
            within=self._answer_db_retry,
        )
        if not recorded:
            log.warning(
                "message %s: replied, but its lease was taken over meanwhile (its holder records it)", claimed.id
            )
            return
        self._on_event("reply" if answer.sender == "bot" and delivered else "fallback" if delivered else "failed")

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
    async def sweep_once(self) -> int:
        """Take over every message whose lease ran out (on any replica). Returns how many were started."""
        if not self._taking:
            return 0
        replicas = self._config.current.replicas
        foreign_now = self._foreign_now
        ids = await self._db(
            lambda s: leases.claimable(
                s,
                owner=self.instance_id,
                posting_grace=replicas.posting_grace_seconds,
                foreign_before=self._started_at if foreign_now else None,
            ),
            within=self._answer_db_retry,
        )
        self._foreign_now = False
        started = sum(1 for i in ids if self._taking and self.schedule(i, takeover=True, foreign_now=foreign_now))
        if started:
            log.info("sweeper found %d answer(s) whose lease ran out", started)
        return started

    async def run_sweeper(self) -> None:
        while True:
            interval = self._config.current.replicas.sweep_seconds
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweeper pass failed; trying again in %.1fs", interval)
            await asyncio.sleep(interval)
