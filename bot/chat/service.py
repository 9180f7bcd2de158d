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

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sqlalchemy import Connection

from bot.chat import channels_logic, history_logic, memory_logic
from bot.chat.ledger_logic import ledger_cost, ledger_rows
from bot.chat.limits_logic import ANSWER, SLOW_DOWN
from bot.chat.pipeline_base import Answer, reply_target
from bot.chat.ports import ThinkingIndicator
from bot.chat.prompting import Prepared
from bot.chat.recovery import ChatRecovery
from bot.chat.reply_logic import has_words
from bot.chat.thread_context import read_thread_context
from bot.errors import LeaseLost, PartlyDelivered, SlackDeliveryError
from bot.llm.gateway import ChatResult
from bot.logging_setup import conversation_id_var, event_id_var
from bot.store import chat_repo, privacy_repo
from bot.store.leases import Lease

log = logging.getLogger(__name__)


class ChatService(ChatRecovery):
    """The whole pipeline (intake, answer, recovery); constructed with ChatBase's keyword arguments."""

    # ----- answer: after the ack
    async def answer(self, message_id: int, *, takeover: bool = False, foreign_now: bool = False) -> None:
        """Answer a message this worker accepted, or (`takeover`) one whose lease ran out."""
        await self.after_intake()
        async with self.guards.gate:
            await self._answer(message_id, takeover=takeover, foreign_now=foreign_now)

    async def _answer(self, message_id: int, *, takeover: bool, foreign_now: bool) -> None:
        try:
            lease = await self._take_over(message_id, foreign_now) if takeover else self.keeper.lease(message_id)
            if lease is None:
                return
            history_size = self._history_rows()

            def load(s: Connection) -> tuple[chat_repo.ClaimedMessage, frozenset[str]]:
                claimed = chat_repo.load_claimed(s, message_id, history_size=history_size)
                if claimed.conversation.kind == "dm":  # a 1:1 DM has one person: no read of its whole history
                    return claimed, frozenset({claimed.user_id} if claimed.user_id else ())
                return claimed, privacy_repo.participants(s, message_id)

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

    async def _answer_claimed(self, claimed: chat_repo.ClaimedMessage, lease: Lease, people: frozenset[str]) -> None:
        config = self._config.current
        conversation = claimed.conversation
        event_id_var.set(claimed.event_id)
        conversation_id_var.set(conversation.id)
        if claimed.erased:
            log.info("message %s was deleted before Lukas answered it; not answering", claimed.id)
            nothing = Answer("", "bot")
            await self._record(claimed, lease, nothing, None, state=chat_repo.DONE, from_state=chat_repo.WORKING)
            return
        verdict = claimed.verdict  # decided at accept and stored with the message, whoever answers it now
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

        status: ThinkingIndicator | None = None

        async def mark_posting(text: str | None = None) -> None:
            await self._mark_posting(
                claimed, lease, user_name=name, flag_reason=prepared.refusal, counts=new_counts, reply_text=text
            )
            if status is not None:
                status.replying()

        if prepared.refusal is not None:
            answer = Answer(self._line(config.fallbacks.refusal_lines, conversation.last_fallback), "fallback")
            answer, timestamps = await self._post_whole(answer, claimed, mark_posting, people)
        else:
            status = self._thinking_status(claimed)
            timestamps = None
            try:
                if channel.streaming:
                    answer, timestamps = await self._answer_streamed(
                        claimed, lease, prepared, mark_posting, people, chain_names=channel.chain
                    )
                else:
                    answer = self._judge(
                        await self._gateway.complete(
                            prepared.messages, prompt_tokens=prepared.prompt_tokens, chain_names=channel.chain
                        ),
                        last_fallback=conversation.last_fallback,
                        people=people,
                    )
                    answer, timestamps = await self._post_whole(answer, claimed, mark_posting, people)
            finally:
                if status is not None:  # one status call per answer: the reply clears it in Slack
                    await status.clear(replied=bool(timestamps))
        reply_tokens = await self._record(claimed, lease, answer, timestamps)
        # The summary is refreshed in the background, after the reply, once the conversation is quiet.
        self.memory.after_reply(claimed, reply_tokens=reply_tokens)

    def _history_rows(self) -> int:
        """How many of its newest messages an answer loads (and as many thread context messages)."""
        config = self._config.current
        if not config.memory.enabled:
            return config.llm.history_size
        return config.llm.history_size + config.memory.refresh_after_messages - 1  # fell out, not summarised yet

    async def _mark_posting(
        self,
        claimed: chat_repo.ClaimedMessage,
        lease: Lease,
        *,
        user_name: str | None,
        flag_reason: str | None,
        counts: dict[int, int],
        reply_text: str | None = None,
    ) -> None:
        """The last write before anything is visible in Slack (fenced): from here on it is never posted blindly
        again, and shutdown no longer cuts it off. `reply_text` (when known) lets a take-over post the parts Slack
        lacks. Raises LeaseLost when another replica holds it now."""
        self._posting.add(claimed.id)
        if not self.keeper.owns(claimed.id):
            raise LeaseLost(f"lease on message {claimed.id} expired before posting")
        marked = await self._db(
            lambda s: chat_repo.mark_posting(
                s,
                lease,
                owner=self.instance_id,
                user_name=user_name,
                flag_reason=flag_reason,
                counts=counts,
                reply_text=reply_text,
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

        async def mark_posting(text: str | None = None) -> None:
            await self._mark_posting(claimed, lease, user_name=None, flag_reason=reason, counts={}, reply_text=text)

        if verdict in (ANSWER, SLOW_DOWN):
            answer = Answer(self._line(lines, conversation.last_fallback), "fallback")
            answer, timestamps = await self._post_whole(answer, claimed, mark_posting, frozenset())
        else:  # QUIET: the slow-down line was already said in this window
            await mark_posting()
            answer, timestamps = Answer("", "fallback"), []
        await self._record(claimed, lease, answer, timestamps)

    async def _answer_streamed(
        self,
        claimed: chat_repo.ClaimedMessage,
        lease: Lease,
        prepared: Prepared,
        mark_posting: Callable[[], Awaitable[None]],
        people: frozenset[str],
        *,
        chain_names: tuple[str, ...] | None = None,
    ) -> tuple[Answer, list[str] | None]:
        """The reply grows on the platform as the model writes it; the final text (or a fallback line) replaces it."""
        conversation = claimed.conversation
        engine = self._contracts() if self._contracts else None

        async def keep_text(text: str) -> None:
            if not await self._db(
                lambda s: chat_repo.keep_reply_text(s, lease, owner=self.instance_id, text=text),
                within=self._answer_db_retry,
            ):
                raise LeaseLost(f"lease on message {claimed.id} lost before posting the rest of its reply")

        writer = self._platform.open_stream(
            reply_target(claimed, people),
            before_first_post=mark_posting,
            guard=(lambda text: engine.check_reply_partial(text).ok) if engine is not None else None,
            before_more=keep_text,
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
        except PartlyDelivered as exc:
            log.error("could not deliver all of the streamed reply: %s", exc)
            return replace(answer, text=exc.text), exc.timestamps
        except SlackDeliveryError as exc:
            log.error("could not deliver the streamed reply: %s", exc)
            return answer, None

    async def _post_whole(
        self,
        answer: Answer,
        claimed: chat_repo.ClaimedMessage,
        mark_posting: Callable[[str], Awaitable[None]],
        people: frozenset[str],
    ) -> tuple[Answer, list[str] | None]:
        """Post the reply in one go (split when long); None when Slack would not take it, and only the parts it
        took when it refused one midway (what is recorded is what Slack holds)."""
        await mark_posting(answer.text)
        try:
            return answer, await self._platform.post_reply(
                reply_target(claimed, people), answer.text, still_ours=lambda: self.keeper.owns(claimed.id)
            )
        except PartlyDelivered as exc:
            log.error("could not deliver all of the reply: %s", exc)
            return replace(answer, text=exc.text), exc.timestamps
        except SlackDeliveryError as exc:
            log.error("could not deliver the reply: %s", exc)
            return answer, None

    async def _record(
        self,
        claimed: chat_repo.ClaimedMessage,
        lease: Lease,
        answer: Answer,
        timestamps: list[str] | None,
        *,
        state: str | None = None,
        from_state: str = chat_repo.POSTING,
    ) -> int | None:
        """Store the reply (or fallback) with one ledger row per provider tried, and close the question. Returns the
        stored reply's token count (None when no reply of Lukas's was stored)."""
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
            return None
        self._on_event("reply" if answer.sender == "bot" and delivered else "fallback" if delivered else "failed")
        return reply_tokens if answer.text else None

    def _thinking_status(self, claimed: chat_repo.ClaimedMessage) -> ThinkingIndicator | None:
        """Show "Lukas is thinking…" while the model works: in the thread, or on the message in a DM's main timeline."""
        thread_ts = claimed.conversation.thread_ts or claimed.ts
        if not thread_ts:
            return None
        return self._platform.show_thinking(channel=claimed.conversation.channel_id, thread_ts=thread_ts)

    def _judge(
        self, result: ChatResult, *, last_fallback: str | None, people: frozenset[str], stopped: bool = False
    ) -> Answer:
        """The model's reply after the output checks, or a fallback line."""
        config = self._config.current
        fallback = Answer(self._line(config.fallbacks.lines, last_fallback), "fallback", result)
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
        return Answer(text, "bot", result)
