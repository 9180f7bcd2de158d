"""Rolling summaries, written in the background after a reply (issue 15): never on the path of an answer.

After each recorded reply the chat service asks the keeper (`after_reply`) whether the summary is due, judged from
the history the answer already loaded (no read of its own: bot.chat.memory_logic.refresh_due). A due conversation
waits until it has been quiet for memory.refresh_quiet_seconds (a nudge during the wait restarts it) and until no
answer is being worked on (at most IDLE_WAIT_SECONDS more), so a refresh neither runs on a message's path nor
competes with the next one; its database work queues behind every answer's (BACKGROUND priority). Then the keeper
reads what fell out of the window, decides whether to extend, rebuild or drop the summary, asks the chat gateway
(same chain, breakers, rate limits; ledger rows with purpose "summary", priced like any call), checks input and
output with the contracts, and saves the summary unless a message it covers was erased meanwhile. A failed or
refused call keeps the old summary and is logged once per conversation until a refresh succeeds again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from bot.chat import memory_logic
from bot.chat.history_logic import StoredMessage, order_key
from bot.chat.ledger_logic import ledger_rows
from bot.chat.prompting import PromptPreparer
from bot.config.live import LiveConfig
from bot.store import memory_repo
from bot.store.chat_repo import ClaimedMessage
from bot.store.units import BACKGROUND, UnitRunner
from bot.tokens.trimming_logic import PromptMessage

log = logging.getLogger(__name__)
ContractsProvider = Callable[[], Any]
# After a failed or refused summary call, that conversation's summary waits this long before the next try, so a
# failing model is not asked again after every reply (its breaker is the chat's, too).
RETRY_AFTER_FAILURE_SECONDS = 300.0
IDLE_WAIT_SECONDS = 10.0  # after the quiet time, how long a refresh waits for no answer to be in flight
QUIET_AT_MOST_SECONDS = 60.0  # a conversation that never pauses still gets its summary after this long
IDLE_POLL_SECONDS = 0.1
MAX_REFRESHING = 4  # summaries written at once; the others wait their turn


class SummaryKeeper:
    def __init__(
        self,
        *,
        config: LiveConfig,
        store: UnitRunner,
        gateway: Any,
        prompting: PromptPreparer,
        contracts: ContractsProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        """`busy`: True while answers are being worked on (a due refresh waits for it to be False)."""
        self._config = config
        self._clock = clock
        self._busy = busy
        self._store = store
        self._gateway = gateway
        self._prompting = prompting
        self._contracts = contracts
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()  # nudged while a refresh was running: look once more when it ends
        self._due_at: dict[int, tuple[float, float]] = {}  # conversation -> (first, latest) nudge while it waits
        self._hurry = asyncio.Event()  # set by flush(): every waiting refresh runs now
        self._refreshing = asyncio.Semaphore(MAX_REFRESHING)
        self._failing: dict[int, float] = {}  # conversation -> when its last refresh failed (logged once)
        # (conversation, what happened), the newest 1,000: for tests and the benchmark (a running bot must not keep
        # one entry per reply forever).
        self.outcomes: deque[tuple[int, str]] = deque(maxlen=1000)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def after_reply(self, claimed: ClaimedMessage, *, reply_tokens: int | None) -> None:
        """A reply to `claimed` was recorded (`reply_tokens`: its stored count, None when no reply of Lukas's was
        stored): nudge the keeper if a refresh is due, judged from the history the answer loaded. Returns at once
        and reads nothing."""
        config = self._config.current
        if not config.memory.enabled:
            return
        summary = claimed.summary
        boundary = memory_logic.Boundary(summary.through_message_id, summary.through_context) if summary else None
        reply = None
        if reply_tokens is not None:
            newest = max((m.id for m in claimed.history), default=claimed.id)
            reply = StoredMessage(id=newest + 1, sender="bot", content="", user_name=None, token_count=reply_tokens)
        if memory_logic.refresh_due(
            history=claimed.history,
            boundary=boundary,
            summary_stale=claimed.has_summary and summary is None,
            reply=reply,
            loaded_limit=claimed.history_limit,
            history_size=config.llm.history_size,
            window_tokens=self._window_tokens(),
            refresh_after=config.memory.refresh_after_messages,
        ):
            self.nudge(claimed.conversation.id)

    def nudge(self, conversation_id: int) -> None:
        """Refresh this conversation's summary in the background once it is quiet and the process idle."""
        if not self._config.current.memory.enabled:
            return
        if conversation_id in self._due_at:  # still waiting: the quiet time starts again
            self._due_at[conversation_id] = (self._due_at[conversation_id][0], self._clock())
            return
        if conversation_id in self._tasks:
            self._again.add(conversation_id)
            return
        failed_at = self._failing.get(conversation_id)
        if failed_at is not None and self._clock() - failed_at < RETRY_AFTER_FAILURE_SECONDS:
            return
        self._due_at[conversation_id] = (self._clock(), self._clock())
        task = asyncio.create_task(self._when_quiet(conversation_id), name=f"summary-{conversation_id}")
        self._tasks[conversation_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(conversation_id, None))

    async def _when_quiet(self, conversation_id: int) -> None:
        try:
            while not self._hurry.is_set() and (left := self._quiet_left(conversation_id)) > 0:
                await self._wait(left)
            idle_by = self._clock() + IDLE_WAIT_SECONDS
            while not self._hurry.is_set() and self._busy() and self._clock() < idle_by:
                await self._wait(IDLE_POLL_SECONDS)
        finally:
            self._due_at.pop(conversation_id, None)
        async with self._refreshing:
            await self._run(conversation_id)

    def _quiet_left(self, conversation_id: int) -> float:
        first, latest = self._due_at[conversation_id]
        quiet_from = min(latest + self._quiet_seconds(), first + QUIET_AT_MOST_SECONDS)
        return quiet_from - self._clock()

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), timeout=seconds)

    def _quiet_seconds(self) -> float:
        return self._config.current.memory.refresh_quiet_seconds

    async def drain(self, timeout: float) -> None:
        """Let the refreshes being written finish (at shutdown); those still waiting for quiet are dropped, since the
        next reply in their conversation finds them due again."""
        for conversation_id in list(self._due_at):
            task = self._tasks.get(conversation_id)
            if task is not None:
                task.cancel()
        await self.flush(timeout)

    async def flush(self, timeout: float) -> None:
        """Write every due summary now, without waiting for quiet (benchmarks and tests)."""
        self._hurry.set()
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while self._tasks:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    return
                await asyncio.wait(list(self._tasks.values()), timeout=left)
        finally:
            self._hurry.clear()

    def _window_tokens(self) -> int:
        config = self._config.current
        return memory_logic.window_tokens(
            context_budget=config.llm.context_budget_tokens,
            reply_tokens=config.llm.max_tokens,
            persona_tokens=self._prompting.count_cached(config.persona.system_prompt),
            max_summary_tokens=config.memory.max_summary_tokens,
        )

    async def _run(self, conversation_id: int) -> None:
        for _ in range(5):  # each round takes the next due chunk; a nudge during a round asks for one more
            self._again.discard(conversation_id)
            try:
                outcome = await self.refresh(conversation_id)
            except Exception:
                log.exception("summary of conversation %s failed; the old summary stays", conversation_id)
                return
            if outcome == "failed":
                return
            if outcome in ("extended", "rebuilt", "erased meanwhile") or conversation_id in self._again:
                continue
            return

    async def refresh(self, conversation_id: int) -> str:
        """One refresh: "none", "extended", "rebuilt", "dropped", "failed", "erased meanwhile",
        "superseded" or "gone"."""
        outcome = await self._refresh(conversation_id)
        self.outcomes.append((conversation_id, outcome))
        return outcome

    async def _refresh(self, conversation_id: int) -> str:
        config = self._config.current
        memory, llm = config.memory, config.llm
        history_size = llm.history_size
        state = await self._store.run(
            lambda s: memory_repo.load_state(s, conversation_id, max_rows=history_size + 200), priority=BACKGROUND
        )
        summary = state.summary
        covered = []
        if summary is not None and state.erased_since_built:
            boundary = summary.boundary
            covered = await self._store.run(
                lambda s: memory_repo.load_covered(s, conversation_id, boundary), priority=BACKGROUND
            )
        plan = memory_logic.plan_refresh(
            previous=summary.text if summary else None,
            boundary=summary.boundary if summary else None,
            first_message_id=summary.first_message_id if summary else None,
            erased_since_built=state.erased_since_built,
            covered=covered,
            uncovered=sorted(state.uncovered, key=order_key),
            history_size=history_size,
            window_tokens=self._window_tokens(),
            refresh_after=memory.refresh_after_messages,
            max_input_tokens=memory.max_input_tokens,
        )
        if plan.action == memory_logic.NONE:
            return "none"
        if plan.action == memory_logic.DROP:
            await self._store.run(lambda s: memory_repo.delete_summary(s, conversation_id), priority=BACKGROUND)
            log.info("summary of conversation %s removed: %s", conversation_id, plan.reason)
            return "dropped"
        text = await self._write(conversation_id, plan)
        if text is None:
            return "failed"
        assert plan.boundary is not None and plan.first_message_id is not None
        boundary, first_id = plan.boundary, plan.first_message_id
        count = len(plan.messages) + (summary.message_count if summary and plan.action == memory_logic.EXTEND else 0)
        tokens = self._prompting.count(memory_logic.SUMMARY_PREFIX + text)
        saved = await self._store.run(
            lambda s: memory_repo.save_summary(
                s,
                conversation_id=conversation_id,
                text=text,
                token_count=tokens,
                boundary=boundary,
                first_message_id=first_id,
                message_count=count,
                built_from=state.read_at,
                expected_updated_at=summary.updated_at if summary else None,
            ),
            priority=BACKGROUND,
        )
        if saved != "saved":
            log.info("summary of conversation %s not saved: %s", conversation_id, saved)
            return saved
        if conversation_id in self._failing:
            del self._failing[conversation_id]
            log.info("summary of conversation %s is being kept again", conversation_id)
        log.info("summary of conversation %s %s (%s): %d tokens", conversation_id, plan.action, plan.reason, tokens)
        return "extended" if plan.action == memory_logic.EXTEND else "rebuilt"

    async def _write(self, conversation_id: int, plan: memory_logic.RefreshPlan) -> str | None:
        """Ask the model for the new summary, with the contracts on both sides; None when it cannot be had."""
        config = self._config.current
        memory = config.memory
        request = memory_logic.summary_request(
            persona_name=config.persona.name,
            previous=plan.previous,
            messages=plan.messages,
            max_words=memory_logic.words_for(memory.max_summary_tokens),
        )
        prompt = [PromptMessage(m["role"], m["content"], self._prompting.count(m["content"])) for m in request]
        engine = self._contracts() if self._contracts else None
        if engine is not None:
            from bot.contracts import ChatCandidate

            checked = engine.check_chat_input(
                ChatCandidate(
                    messages=prompt,
                    budget_tokens=max(sum(m.tokens for m in prompt) + memory.max_summary_tokens + 16, 256),
                    reply_tokens=memory.max_summary_tokens,
                    model=self._prompting.model(),
                    default_encoding=config.llm.default_encoding,
                )
            )
            if not checked.ok:
                self._failed(conversation_id, "the input checks refused it: " + "; ".join(checked.reasons))
                return None
            prompt = checked.value.messages
        result = await self._gateway.complete(
            [m.as_dict() for m in prompt],
            prompt_tokens=sum(m.tokens for m in prompt),
            max_tokens=memory.max_summary_tokens,
            prefer=memory.provider,
        )
        rows = ledger_rows(result=result, conversation_id=conversation_id, purpose="summary")
        try:
            await self._store.run(lambda s: memory_repo.record_calls(s, rows), priority=BACKGROUND)
        except Exception as exc:  # the ledger must not cost the conversation its memory
            log.error("could not record the summary's model call: %s", type(exc).__name__)
        if not result.ok or not (result.text or "").strip():
            self._failed(conversation_id, f"the model could not answer ({result.outcome})")
            return None
        text = result.text or ""
        if engine is not None:
            reply = engine.check_reply(text)
            if not reply.ok:
                self._failed(conversation_id, "the output checks refused it: " + "; ".join(reply.reasons))
                return None
            text = str(reply.value)
        return memory_logic.cap_summary(
            text,
            max_tokens=memory.max_summary_tokens,
            count=self._prompting.count_text,
            shorten=self._prompting.shorten,
        )

    def _failed(self, conversation_id: int, reason: str) -> None:
        first = conversation_id not in self._failing
        self._failing[conversation_id] = self._clock()
        if first:
            log.warning(
                "could not refresh the summary of conversation %s (%s); keeping the old one", conversation_id, reason
            )
        else:
            log.debug("summary of conversation %s still failing: %s", conversation_id, reason)
