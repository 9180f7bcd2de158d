"""The chat service's guards (issue 12): limits per person and conversation, a cap on answers in flight, and the
monthly chat budget. Decisions are in bot.chat.limits_logic; this holds the state and reads the month's spending.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from bot.chat.channels_logic import is_dm_channel, settings_for
from bot.chat.limits_logic import ANSWER, MessageLimiter, budget_reached
from bot.config.channels_schema import ChannelLimits
from bot.config.live import LiveConfig
from bot.images.slots_logic import month_window
from bot.store import privacy_repo
from bot.store.models import utcnow

log = logging.getLogger(__name__)

SPEND_CACHE_SECONDS = 15.0  # how stale the month's spending may be (other replicas' spending shows up after this)
Alert = Callable[..., Awaitable[bool]]
RunDb = Callable[[Callable[[Any], Any]], Awaitable[Any]]
MAX_IDLE_GATES = 1000  # channel gates kept before idle ones are dropped


class InFlightGate:
    """At most `limit()` answers worked on at once; the rest wait in arrival order (the limit follows reloads)."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self._active = 0
        self._condition: asyncio.Condition | None = None

    @property
    def active(self) -> int:
        return self._active

    async def __aenter__(self) -> None:
        if self._condition is None:
            self._condition = asyncio.Condition()
        async with self._condition:
            await self._condition.wait_for(lambda: self._active < self._limit())
            self._active += 1

    async def __aexit__(self, *_exc: object) -> None:
        assert self._condition is not None
        async with self._condition:
            self._active -= 1
            self._condition.notify()


class ChatGuards:
    def __init__(
        self, *, config: LiveConfig, alert: Alert | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._alert = alert
        self._clock = clock
        self.limiter = MessageLimiter()
        self.gate = InFlightGate(lambda: self._config.current.limits.max_in_flight)
        self._channel_gates: dict[str, InFlightGate] = {}
        self._verdicts: dict[int, str] = {}
        self._spent: tuple[float, dt.datetime, float] | None = None  # (read at, month start, dollars)
        self._alerted_months: set[dt.datetime] = set()

    # ----- limits: decided when a message is accepted, in arrival order
    def judge(
        self, *, message_id: int, user_id: str | None, conversation_id: int, channel: ChannelLimits | None = None
    ) -> str:
        """`channel`: the channel rule's limits (channels.<ID>.limits), which replace the global windows there."""
        config = self._config.current
        per_person = channel.per_person if channel is not None and channel.per_person else config.limits.per_person
        per_conversation = (
            channel.per_conversation
            if channel is not None and channel.per_conversation
            else config.limits.per_conversation
        )
        verdict = self.limiter.check(
            user_id=user_id,
            conversation_id=conversation_id,
            is_admin=bool(user_id and user_id in config.admins),
            per_person=per_person,
            per_conversation=per_conversation,
            now=self._clock(),
        )
        if verdict != ANSWER:
            log.warning("message %s from %s is over a limit (limits:): %s", message_id, user_id, verdict)
            self._verdicts[message_id] = verdict
        return verdict

    def channel_gate(self, channel_id: str) -> AbstractAsyncContextManager[Any]:
        """Answers at once in one channel: channels.<ID>.limits.max_in_flight (unlimited there when unset).

        Channels without that limit (most, and every DM unless `dm` sets one) share a gate that admits everyone:
        a gate per channel ever seen would grow with every new DM. Idle gates are dropped once there are many."""

        def limit() -> int | None:
            rule = settings_for(config=self._config.current, channel_id=channel_id, is_dm=is_dm_channel(channel_id))
            return rule.limits.max_in_flight

        gate = self._channel_gates.get(channel_id)
        if gate is None:
            if limit() is None:
                return contextlib.nullcontext()
            if len(self._channel_gates) >= MAX_IDLE_GATES:
                self._channel_gates = {key: kept for key, kept in self._channel_gates.items() if kept.active}
            gate = self._channel_gates[channel_id] = InFlightGate(lambda: limit() or 1_000_000)
        return gate

    def verdict_for(self, message_id: int) -> str:
        """The limit verdict for a message (ANSWER for ones not judged here, e.g. taken over by the sweeper)."""
        return self._verdicts.pop(message_id, ANSWER)

    def room_for(self, in_flight_or_queued: int) -> bool:
        limits = self._config.current.limits
        return in_flight_or_queued < limits.max_in_flight + limits.max_queued

    # ----- the monthly chat budget
    async def over_budget(self, run_db: RunDb) -> bool:
        """True once this month's spending reached usage.chat_monthly_budget_usd; DMs the admins once a month."""
        config = self._config.current
        budget = config.usage.chat_monthly_budget_usd
        if budget is None:
            return False
        now = utcnow()
        start, _end = month_window(now=now, timezone=config.images.schedule.timezone)
        cached = self._spent
        if cached is None or cached[1] != start or self._clock() - cached[0] > SPEND_CACHE_SECONDS:
            spent = await run_db(lambda s: privacy_repo.spent_since(s, start=start))
            cached = self._spent = (self._clock(), start, spent)
        if not budget_reached(spent_usd=cached[2], budget_usd=budget):
            return False
        if start not in self._alerted_months and self._alert is not None:
            self._alerted_months.add(start)
            log.warning(
                "chat budget reached: $%.4f of $%.2f this month; Lukas rests until next month", cached[2], budget
            )
            text = (
                f"🐻 The chat budget is used up: ${cached[2]:.4f} spent this month of "
                f"usage.chat_monthly_budget_usd ${budget:.2f}. Until next month (or a higher budget in config.yml) "
                "I answer with a resting line and do not call the model."
            )
            await self._alert("chat_budget", text, once_key=f"chat_budget:{start.isoformat()}")
        return True

    def add_spending(self, dollars: float) -> None:
        """Count this process's new spending at once (other replicas' within SPEND_CACHE_SECONDS)."""
        if self._spent is not None and dollars:
            read_at, start, spent = self._spent
            self._spent = (read_at, start, spent + dollars)
