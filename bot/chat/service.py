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
from dataclasses import replace
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
from bot.store.models import utcnow

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
        stale_after: dt.timedelta | None = None,
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
        token_count = self._count(incoming.text)
        result = await self._db(
            lambda s: chat_repo.accept_message(s, incoming, token_count=token_count), within=self._accept_db_retry
        )
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
        """Answer a message this worker accepted, or (with `stale_before`) take over an abandoned one."""
        try:
            if stale_before is not None:
                taken = await self._db(
                    lambda s: chat_repo.claim_stale(s, message_id, stale_before=stale_before),
                    within=self._answer_db_retry,
                )
                if not taken:
                    return
            history_size = self._config.current.llm.history_size
            claimed = await self._db(
                lambda s: chat_repo.load_claimed(s, message_id, history_size=history_size), within=self._answer_db_retry
            )
            await self._answer_claimed(claimed)
        except Exception:
            log.exception("answering message %s failed; it stays in the database for the next sweep", message_id)

    async def _answer_claimed(self, claimed: chat_repo.ClaimedMessage) -> None:
        config = self._config.current
        conversation = claimed.conversation
        event_id_var.set(claimed.event_id)
        conversation_id_var.set(conversation.id)
        name = claimed.user_name
        if name is None and claimed.user_id:
            name = await self._names.name_of(claimed.user_id)
        history = [replace(m, user_name=name) if m.id == claimed.id else m for m in claimed.history]
        window = history_logic.select_window(messages=history, history_size=config.llm.history_size)
        prompt, new_counts = history_logic.build_prompt(
            system_prompt=config.persona.system_prompt, window=window, count=self._count, count_name=self._count_name
        )
        reply, sender, flag_reason, result = await self._think(prompt, last_fallback=conversation.last_fallback)
        if flag_reason is not None:
            log.warning("message refused by the input checks: %s", flag_reason)
        await self._db(
            lambda s: chat_repo.mark_posting(s, claimed.id, user_name=name, flag_reason=flag_reason, counts=new_counts),
            within=self._answer_db_retry,
        )
        call = self._ledger_row(result, conversation.id)
        try:
            timestamps = await post_reply(
                self._slack,
                channel=conversation.channel_id,
                thread_ts=conversation.thread_ts or None,
                text=reply,
                max_chars=config.slack.max_message_chars,
            )
        except SlackDeliveryError as exc:
            log.error("could not deliver the reply: %s", exc)
            await self._db(
                lambda s: chat_repo.record_reply(
                    s,
                    question_id=claimed.id,
                    conversation=conversation,
                    sender=sender,
                    text=None,
                    slack_ts=None,
                    token_count=None,
                    llm_call=call,
                    state=chat_repo.FAILED,
                ),
                within=self._answer_db_retry,
            )
            return
        reply_tokens = self._count(reply) if sender == "bot" else None
        await self._db(
            lambda s: chat_repo.record_reply(
                s,
                question_id=claimed.id,
                conversation=conversation,
                sender=sender,
                text=reply,
                slack_ts=timestamps[0] if timestamps else None,
                token_count=reply_tokens,
                llm_call=call,
            ),
            within=self._answer_db_retry,
        )

    def _count(self, text: str) -> int:
        llm = self._config.current.llm
        return tokens.count_message(text, model=llm.model, default_encoding=llm.default_encoding)

    def _count_name(self, name: str) -> int:
        llm = self._config.current.llm
        return tokens.count_text(f"{name}: ", model=llm.model, default_encoding=llm.default_encoding)

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
    def _ledger_row(result: ChatResult | None, conversation_id: int) -> dict[str, object] | None:
        if result is None:
            return None
        return {
            "conversation_id": conversation_id,
            "purpose": "chat",
            "provider": result.provider,
            "model": result.model,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cost_usd": result.cost_usd,
            "latency_ms": result.latency_ms,
            "attempts": result.attempts,
            "outcome": result.outcome,
        }

    # ----- the sweeper: nothing accepted is ever forgotten (restarts, crashes, database hiccups)
    def stale_after(self) -> dt.timedelta:
        """How long a claim lasts: longer than the slowest possible answer, so a live worker is never overtaken."""
        if self._stale_after is not None:
            return self._stale_after
        config = self._config.current
        policy, llm = config.retry.chat, config.llm
        longest_wait = max(policy.wait_max_seconds + policy.jitter_seconds, policy.max_retry_after_seconds)
        seconds = policy.attempts * (llm.timeout_seconds + 5) + (policy.attempts - 1) * longest_wait
        return dt.timedelta(seconds=seconds + 120)

    async def sweep_once(self) -> int:
        stale_before = utcnow() - self.stale_after()
        ids = await self._db(lambda s: chat_repo.unanswered(s, stale_before=stale_before), within=self._answer_db_retry)
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
