"""Short units of work (one transaction each) for the chat hot path: accept, load, mark posting, record.

The units are plain blocking functions on a Core Connection (bot.store.chat_repo), run the cheapest way
for each database:
- SQLite: on one worker thread with the plain sqlite3 driver. Through aiosqlite every statement is several
  hops between the event loop and the driver's thread (~13 ms of CPU per message); a whole transaction
  as one hop costs a fraction of that. One thread, because SQLite has one writer anyway; urgent units
  (accepting an event before Slack's 3 s deadline) jump the queue ahead of background ones.
- PostgreSQL: on the event loop through the async driver (`AsyncConnection.run_sync`), since psycopg is
  natively asynchronous; worker threads there would fight the event loop for the GIL. At most
  `POSTGRES_SLOTS` connections work at once (the steady part of the pool: bursts beyond it opened and closed
  overflow connections and queued for seconds), and urgent units are served first.

Units waiting together run back to back on one connection (at most `COALESCE` of them), each still its own
transaction: under a burst that saves a pool checkout (with PostgreSQL's pre-ping round trip) and a hop between
threads per unit, which were a large part of each answer's database cost (issue 17).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import create_sqlite_sync_engine

T = TypeVar("T")
URGENT, NORMAL, BACKGROUND = 0, 1, 2  # accepts before answers, answers before summaries
POSTGRES_SLOTS = 8
COALESCE = 16
_STOP = object()

# (work, future): a unit waiting to run and where its outcome goes.
_Unit = tuple[Callable[[Connection], Any], asyncio.Future[Any]]
_Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


def _run_units(
    connection: Connection, first: _Unit, more: Callable[[], _Unit | None], deliver: Callable[[_Outcome], None]
) -> None:
    """`first`, then whatever `more` hands over (the most urgent waiting unit, or None), up to COALESCE units on
    one connection. Each outcome is delivered at once; a unit that fails (or leaves a transaction open) is rolled
    back, so the next one starts clean, and a failure belongs to its own unit only."""
    unit: _Unit | None = first
    for taken in range(1, COALESCE + 1):
        if unit is None:
            return
        work, future = unit
        if not future.cancelled():  # else its caller gave up before it ran
            try:
                deliver((future, work(connection), None))
            except BaseException as error:  # handed to the awaiting coroutine
                deliver((future, None, error))
            if connection.in_transaction():
                # A lost connection fails here too: the units after this one then fail (and are retried) alike.
                with contextlib.suppress(Exception):
                    connection.rollback()
        unit = more() if taken < COALESCE else None  # the next one waits for a fresh connection


class UnitRunner:
    def __init__(self, engine: AsyncEngine) -> None:
        self._async_engine = engine
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._waiting: list[tuple[int, int, _Unit]] = []  # PostgreSQL: a heap by (priority, arrival)
        self._workers = 0
        self._worker_tasks: set[asyncio.Task[None]] = set()
        if engine.dialect.name == "sqlite":
            self._sync_engine = create_sqlite_sync_engine(engine.url.render_as_string(hide_password=False))
            self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
            self._thread = threading.Thread(target=self._work, name="lukas-db", daemon=True)
            self._thread.start()

    @property
    def dialect(self) -> str:
        return self._async_engine.dialect.name

    async def run(self, work: Callable[[Connection], T], *, priority: int = NORMAL) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if self._thread is not None:
            self._queue.put((priority, next(self._order), (work, future)))
        else:
            heapq.heappush(self._waiting, (priority, next(self._order), (work, future)))
            if self._workers < POSTGRES_SLOTS:
                self._workers += 1
                worker = asyncio.create_task(self._postgres_worker(), name="db-units")
                self._worker_tasks.add(worker)
                worker.add_done_callback(self._worker_tasks.discard)
        return await future

    # ----- PostgreSQL: up to POSTGRES_SLOTS workers on the event loop, each taking the most urgent waiting unit
    async def _postgres_worker(self) -> None:
        def more() -> _Unit | None:
            return heapq.heappop(self._waiting)[2] if self._waiting else None

        try:
            while self._waiting:
                first = more()
                assert first is not None
                try:
                    async with self._async_engine.connect() as connection:
                        await connection.run_sync(_run_units, first, more, _settle)
                except Exception as error:  # no connection (the database is away): the unit in hand fails
                    _settle((first[1], None, error))
        finally:
            self._workers -= 1

    # ----- SQLite: one thread, taking the most urgent waiting unit each time
    def _work(self) -> None:
        stopping = False

        def more() -> _Unit | None:
            nonlocal stopping
            if stopping:
                return None
            try:
                _priority, _order, item = self._queue.get_nowait()
            except queue.Empty:
                return None
            if item is _STOP:
                stopping = True
                return None
            return item

        def deliver(outcome: _Outcome) -> None:
            future = outcome[0]
            with contextlib.suppress(RuntimeError):  # its event loop is closed: nobody waits any more
                future.get_loop().call_soon_threadsafe(_settle, outcome)

        while not stopping:
            _priority, _order, first = self._queue.get()
            if first is _STOP:
                return
            try:
                with self._sync_engine.connect() as connection:
                    _run_units(connection, first, more, deliver)
            except Exception as error:  # the connection could not be opened: the unit in hand fails
                deliver((first[1], None, error))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put((BACKGROUND + 1, next(self._order), _STOP))
            self._thread.join(timeout=30)
            self._sync_engine.dispose()


def _settle(outcome: _Outcome) -> None:
    future, result, error = outcome
    if future.done():  # cancelled by its caller, or already failed with its connection
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
