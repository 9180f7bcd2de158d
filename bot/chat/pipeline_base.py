"""The chat pipeline's shared state: configuration, the store with retries, leases, guards and memory.

The pipeline itself is split by stage: bot/chat/intake.py (accept: runs before the ack), bot/chat/recovery.py
(take-overs, the sweeper, shutdown) and bot/chat/service.py (answer: after the ack). ChatService is all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_exponential

from bot.chat.guards import ChatGuards
from bot.chat.lease_keeper import LeaseKeeper
from bot.chat.memory_service import SummaryKeeper
from bot.chat.ports import ChatPlatform, ReplyTarget
from bot.chat.prompting import ContractsProvider, PromptPreparer
from bot.config.live import LiveConfig
from bot.llm.fallbacks import pick_line
from bot.llm.gateway import ChatGateway, ChatResult
from bot.store import chat_repo
from bot.store.models import utcnow
from bot.store.units import NORMAL, UnitRunner

log = logging.getLogger(__name__)
T = TypeVar("T")
INTAKE_FIRST_SECONDS = 0.25  # the longest an answer waits for the events being accepted before it starts
# Takes a picture request (bot.images.requests.PictureDesk.accept): user_id, channel_id, ts, thread_ts, idea.
PictureHandler = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class Answer:
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
    _log_database_retry_of(state.outcome.exception() if state.outcome else None)


def _log_database_retry_of(error: BaseException | None) -> None:
    reason = str(getattr(error, "orig", None) or error).splitlines()[0] if error else "?"
    log.warning("database unavailable (%s: %s); retrying", type(error).__name__, reason[:200])


def reply_target(claimed: chat_repo.ClaimedMessage, people: frozenset[str]) -> ReplyTarget:
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


class ChatBase:
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
        # Events being accepted right now: answers wait (briefly) until there are none, so under a burst every
        # ack goes out before the answers' own work competes with them for the event loop.
        self._accepting = 0
        self._intake_quiet = asyncio.Event()
        self._intake_quiet.set()
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
            config=config,
            store=store,
            gateway=gateway,
            prompting=self._prompting,
            contracts=contracts,
            busy=lambda: bool(self._tasks),
        )

    # ----- database with retries for transient trouble (a restarting PostgreSQL, a locked SQLite)
    async def _db(self, work: Callable[[Connection], T], *, within: float, priority: int = NORMAL) -> T:
        try:  # the usual case, without setting up a retry loop for it
            return await self._store.run(work, priority=priority)
        except Exception as error:
            if not _transient_db_error(error):
                raise
            _log_database_retry_of(error)
            await asyncio.sleep(0.1)  # as the retry loop's own first wait
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

    @property
    def config(self) -> LiveConfig:
        return self._config

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run_db(self, work: Callable[[Connection], T]) -> T:
        """One unit of work on the chat store, with the answer path's retries (privacy jobs and commands use it)."""
        return await self._db(work, within=self._answer_db_retry)

    def _line(self, lines: list[str], last: str | None) -> str:
        return pick_line(lines=lines, last=last, rng=self._rng)

    @contextlib.contextmanager
    def intake_busy(self) -> Iterator[None]:
        """While an event is being accepted (answers wait for after_intake)."""
        self._accepting += 1
        self._intake_quiet.clear()
        try:
            yield
        finally:
            self._accepting -= 1
            if not self._accepting:
                self._intake_quiet.set()

    async def after_intake(self) -> None:
        """Wait until no event is being accepted, for at most INTAKE_FIRST_SECONDS (a steady stream of events
        must not starve the answers)."""
        if not self._intake_quiet.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._intake_quiet.wait(), timeout=INTAKE_FIRST_SECONDS)

    async def answer(self, message_id: int, *, takeover: bool = False, foreign_now: bool = False) -> None:
        """Answer one message (bot/chat/service.py); the intake and the sweeper schedule it."""
        raise NotImplementedError
