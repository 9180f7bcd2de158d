"""The chat service's guards (issue 12): limits per person and conversation, a cap on answers in flight, and the
monthly chat budget. Decisions are in bot.chat.limits_logic; the windows live where every replica sees them (Redis
or the database, issue 22), each message's verdict is stored with it, and the budget DM is claimed once for all.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot.chat.channels_logic import is_dm_channel, limits_entry, settings_for
from bot.chat.limits_logic import Limit, Rules, budget_reached, rules_for
from bot.config.channels_schema import ChannelLimits
from bot.config.live import LiveConfig
from bot.images.slots_logic import month_window
from bot.store import guard_repo, privacy_repo
from bot.store.models import utcnow

if TYPE_CHECKING:  # limits and redis are imported only when REDIS_URL is set
    from bot.shared.guard_windows import SharedWindows

log = logging.getLogger(__name__)

SPEND_CACHE_SECONDS = 15.0  # how stale the month's spending may be (other replicas' spending shows up after this)
Alert = Callable[..., Awaitable[bool]]
RunDb = Callable[[Callable[[Any], Any]], Awaitable[Any]]
MAX_IDLE_GATES = 1000  # channel gates kept before idle ones are dropped
FORGET_EVERY = 1024  # judgements in the database between two sweeps of windows nobody used for a day


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
        self,
        *,
        config: LiveConfig,
        alert: Alert | None = None,
        shared: SharedWindows | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`shared`: the limits' windows in Redis (REDIS_URL); without it, or while Redis is away, the database's."""
        self._config = config
        self._alert = alert
        self._shared = shared
        self._clock = clock  # seconds since the epoch: windows are compared across replicas and restarts
        self.gate = InFlightGate(lambda: self._config.current.limits.max_in_flight)
        self._channel_gates: dict[str, InFlightGate] = {}
        self._spent: tuple[float, dt.datetime, float] | None = None  # (read at, month start, dollars)
        self._alerted_months: set[dt.datetime] = set()  # the budget DM is claimed once for all (admin_notices)
        self._judged = 0

    # ----- limits: decided when a message is accepted, in arrival order, inside the accept transaction
    def rules(self, *, user_id: str | None, channel_id: str, channel: ChannelLimits) -> Rules:
        """`channel`: the limits in force in that channel (channels_logic.settings_for), which replace the global
        windows there; each in a window of the entry that set it."""
        config = self._config.current
        is_dm = is_dm_channel(channel_id)

        def scope(name: str) -> str:
            return limits_entry(config=config, channel_id=channel_id, is_dm=is_dm, name=name)

        return rules_for(
            user_id=user_id,
            is_admin=bool(user_id and user_id in config.admins),
            per_person=channel.per_person or config.limits.per_person,
            person_scope=scope("per_person"),
            per_conversation=channel.per_conversation or config.limits.per_conversation,
            conversation_scope=scope("per_conversation"),
        )

    def judge(self, session: Connection, requests: Sequence[Sequence[Limit]]) -> list[str]:
        """Verdicts for messages being accepted together (run in their transaction, which stores the verdicts).
        Blocking: it runs in a database unit."""
        verdicts = None
        if self._shared is not None and any(requests) and self._shared.usable():
            verdicts = self._shared.judge(requests)
        if verdicts is None:
            now = self._clock()
            verdicts = guard_repo.judge(session, requests, now=now)
            self._judged += 1
            if self._judged % FORGET_EVERY == 0:
                guard_repo.forget_stale_windows(session, now=now)
        return verdicts

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
            await self._alert("chat_budget", text, once_key=f"chat_budget:{start.isoformat()}", lasting=True)
        return True

    def add_spending(self, dollars: float) -> None:
        """Count this process's new spending at once (other replicas' within SPEND_CACHE_SECONDS)."""
        if self._spent is not None and dollars:
            read_at, start, spent = self._spent
            self._spent = (read_at, start, spent + dollars)
