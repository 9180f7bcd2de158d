"""The chat pipeline: accept (store once, before the ack) and answer (after the ack, exactly once).

accept:  classify -> dedupe + store the person's message (unique keys) -> schedule answer
answer:  claim -> names -> history -> trim -> input contracts -> gateway -> output contracts
         -> mark posting -> post to Slack -> store reply + ledger row
Any failure becomes an in-character fallback; the person's message is already safe in the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from bot.chat import history_logic, tokens
from bot.chat.events_logic import Ignored, IncomingMessage, classify_event
from bot.chat.trimming_logic import PromptMessage, fit_to_budget
from bot.config.live import LiveConfig
from bot.errors import SlackDeliveryError
from bot.llm.fallbacks import pick_line
from bot.llm.gateway import ChatGateway, ChatResult
from bot.logging_setup import conversation_id_var, event_id_var
from bot.slack.replies import UserNames, post_reply
from bot.store import chat_repo
from bot.store.models import LLMCall, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
ContractsProvider = Callable[[], Any]


def _transient_db_error(error: BaseException) -> bool:
    if isinstance(error, IntegrityError):
        return False
    if isinstance(error, OperationalError | InterfaceError | OSError | ConnectionError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


class ChatService:
    def __init__(
        self,
        *,
        config: LiveConfig,
        sessions: async_sessionmaker[AsyncSession],
        slack: Any,
        gateway: ChatGateway,
        names: UserNames,
        contracts: ContractsProvider | None = None,
        rng: random.Random | None = None,
        accept_db_retry_seconds: float = 1.5,
        answer_db_retry_seconds: float = 60.0,
        stale_after: dt.timedelta = dt.timedelta(minutes=10),
    ) -> None:
        self._config = config
        self._sessions = sessions
        self._slack = slack
        self._gateway = gateway
        self._names = names
        self._contracts = contracts
        self._rng = rng or random.Random()
        self._accept_db_retry = accept_db_retry_seconds
        self._answer_db_retry = answer_db_retry_seconds
        self._stale_after = stale_after
        self._tasks: dict[int, asyncio.Task[None]] = {}

    # ----- database with retries for transient trouble (a restarting PostgreSQL, a locked SQLite)
    async def _db(self, work: Callable[[AsyncSession], Awaitable[T]], *, within: float) -> T:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient_db_error),
            stop=stop_after_delay(within),
            wait=wait_exponential(multiplier=0.1, max=2),
            reraise=True,
        ):
            with attempt:
                async with self._sessions() as session:
                    return await work(session)
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
        incoming: IncomingMessage = decision
        result = await self._db(lambda s: chat_repo.accept_message(s, incoming), within=self._accept_db_retry)
        if isinstance(result, chat_repo.Rejected):
            log.info("not answering %s event in %s: %s", event_type, incoming.channel_id, result.reason)
            return result.reason
        conversation_id_var.set(result.conversation_id)
        log.info("accepted a message from %s in %s", incoming.user_id, incoming.channel_id)
        self.schedule(result.message_id)
        return "accepted"

    def schedule(self, message_id: int) -> None:
        if message_id in self._tasks:
            return
        task = asyncio.create_task(self.answer(message_id), name=f"answer-{message_id}")
        self._tasks[message_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(message_id, None))

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float) -> None:
        """Wait for answers in progress (at shutdown); unfinished ones are picked up by the next sweep."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=timeout)

    # ----- answer: after the ack
    async def answer(self, message_id: int, *, stale_before: dt.datetime | None = None) -> None:
        try:
            claimed = await self._db(
                lambda s: chat_repo.claim(s, message_id, stale_before=stale_before), within=self._answer_db_retry
            )
            if claimed:
                await self._answer_claimed(message_id)
        except Exception:
            log.exception("answering message %s failed; it stays in the database for the next sweep", message_id)

    async def _answer_claimed(self, message_id: int) -> None:
        config = self._config.current
        async with self._sessions() as session:
            question, conversation = await chat_repo.load_for_reply(session, message_id)
        event_id_var.set(question.event_id)
        conversation_id_var.set(conversation.id)
        if question.user_name is None and question.user_id:
            name = await self._names.name_of(question.user_id)
            if name:
                await self._db(
                    lambda s: chat_repo.set_state(s, message_id, chat_repo.WORKING, user_name=name),
                    within=self._answer_db_retry,
                )
        prompt = await self._db(
            lambda s: self._build_prompt(s, conversation.id, message_id), within=self._answer_db_retry
        )
        reply, sender, flag_reason, result = await self._think(prompt, last_fallback=conversation.last_fallback)
        if flag_reason is not None:
            log.warning("message refused by the input checks: %s", flag_reason)
            await self._db(
                lambda s: chat_repo.set_state(s, message_id, chat_repo.WORKING, flagged=True, flag_reason=flag_reason),
                within=self._answer_db_retry,
            )
        await self._db(lambda s: chat_repo.set_state(s, message_id, chat_repo.POSTING), within=self._answer_db_retry)
        thread_ts = conversation.thread_ts or None
        try:
            timestamps = await post_reply(
                self._slack,
                channel=conversation.channel_id,
                thread_ts=thread_ts,
                text=reply,
                max_chars=config.slack.max_message_chars,
            )
        except SlackDeliveryError as exc:
            log.error("could not deliver the reply: %s", exc)
            await self._db(lambda s: self._record_failed_delivery(s, message_id, result), within=self._answer_db_retry)
            return
        reply_tokens = tokens.count_message(reply, model=config.llm.model, default_encoding=config.llm.default_encoding)
        call = self._ledger_row(result, conversation.id)
        await self._db(
            lambda s: self._record(
                s, message_id, sender, reply, timestamps[0] if timestamps else None, reply_tokens, call
            ),
            within=self._answer_db_retry,
        )

    async def _record(
        self,
        session: AsyncSession,
        message_id: int,
        sender: str,
        text: str,
        ts: str | None,
        token_count: int,
        call: LLMCall | None,
    ) -> None:
        question, conversation = await chat_repo.load_for_reply(session, message_id)
        await chat_repo.record_reply(
            session,
            question=question,
            conversation=conversation,
            sender=sender,
            text=text,
            slack_ts=ts,
            token_count=token_count if sender == "bot" else None,
            llm_call=call,
        )

    async def _record_failed_delivery(self, session: AsyncSession, message_id: int, result: ChatResult | None) -> None:
        _question, conversation = await chat_repo.load_for_reply(session, message_id)
        call = self._ledger_row(result, conversation.id)
        if call is not None:
            session.add(call)
        await chat_repo.set_state(session, message_id, "failed")

    async def _build_prompt(self, session: AsyncSession, conversation_id: int, message_id: int) -> list[PromptMessage]:
        config = self._config.current
        stored = await chat_repo.recent_messages(
            session, conversation_id=conversation_id, up_to_id=message_id, limit=config.llm.history_size
        )
        window = history_logic.select_window(messages=stored, history_size=config.llm.history_size)
        prompt, new_counts = history_logic.build_prompt(
            system_prompt=config.persona.system_prompt, window=window, count=self._count
        )
        if new_counts:
            await chat_repo.store_counts(session, new_counts)
            await session.commit()
        return prompt

    def _count(self, text: str) -> int:
        llm = self._config.current.llm
        return tokens.count_message(text, model=llm.model, default_encoding=llm.default_encoding)

    def _shorten(self, text: str, max_tokens: int) -> str:
        llm = self._config.current.llm
        return tokens.truncate_text(text, max_tokens=max_tokens, model=llm.model, default_encoding=llm.default_encoding)

    async def _think(
        self, prompt: list[PromptMessage], *, last_fallback: str | None
    ) -> tuple[str, str, str | None, ChatResult | None]:
        """Returns (text, sender, flag_reason, gateway result)."""
        config = self._config.current
        trimmed = fit_to_budget(
            messages=prompt,
            budget_tokens=config.llm.context_budget_tokens,
            reply_tokens=config.llm.max_tokens,
            shorten=self._shorten,
            count=lambda text: self._count(text),
        )
        if trimmed.dropped or trimmed.shortened:
            log.info(
                "trimmed the prompt to %d tokens (dropped %d old messages%s)",
                trimmed.prompt_tokens,
                trimmed.dropped,
                ", shortened the newest" if trimmed.shortened else "",
            )
        messages = trimmed.messages
        engine = self._contracts() if self._contracts else None
        if engine is not None:
            from bot.contracts import ChatCandidate

            outcome = engine.check_chat_input(
                ChatCandidate(
                    messages=messages,
                    budget_tokens=config.llm.context_budget_tokens,
                    reply_tokens=config.llm.max_tokens,
                    model=config.llm.model,
                    default_encoding=config.llm.default_encoding,
                )
            )
            if not outcome.ok:
                reason = "; ".join(outcome.reasons) or "input check failed"
                return self._line(config.fallbacks.refusal_lines, last_fallback), "fallback", reason, None
            messages = outcome.value.messages
        result = await self._gateway.complete([m.as_dict() for m in messages])
        if not result.ok or not (result.text or "").strip():
            return self._line(config.fallbacks.lines, last_fallback), "fallback", None, result
        text = result.text or ""
        if engine is not None:
            checked = engine.check_reply(text)
            if not checked.ok:
                log.warning(
                    "the model's reply failed the output checks (%s); sending a fallback line",
                    "; ".join(checked.reasons),
                )
                return self._line(config.fallbacks.lines, last_fallback), "fallback", None, result
            text = checked.value
        return text, "bot", None, result

    def _line(self, lines: list[str], last: str | None) -> str:
        return pick_line(lines=lines, last=last, rng=self._rng)

    @staticmethod
    def _ledger_row(result: ChatResult | None, conversation_id: int) -> LLMCall | None:
        if result is None:
            return None
        return LLMCall(
            conversation_id=conversation_id,
            provider=result.provider,
            model=result.model,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cost_usd=result.cost_usd,
            latency_ms=result.latency_ms,
            attempts=result.attempts,
            outcome=result.outcome,
        )

    # ----- the sweeper: nothing accepted is ever forgotten (restarts, crashes, database hiccups)
    async def sweep_once(self, *, pending_grace: dt.timedelta = dt.timedelta(seconds=30)) -> int:
        now = utcnow()
        stale_before = now - self._stale_after
        ids = await self._db(
            lambda s: chat_repo.unanswered(s, pending_before=now - pending_grace, stale_before=stale_before),
            within=self._answer_db_retry,
        )
        started = 0
        for message_id in ids:
            if message_id not in self._tasks:
                task = asyncio.create_task(self.answer(message_id, stale_before=stale_before))
                self._tasks[message_id] = task
                task.add_done_callback(lambda _t, key=message_id: self._tasks.pop(key, None))
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
