"""Short units of work (one transaction each) for the chat hot path: accept, load, mark posting, record.

The units are plain blocking functions on a Core Connection (bot.store.chat_repo), run the cheapest way
for each database:
- SQLite: on one worker thread with the plain sqlite3 driver. Through aiosqlite every statement is several
  hops between the event loop and the driver's thread (~13 ms of CPU per message); a whole transaction
  as one hop costs a fraction of that. One thread, because SQLite has one writer anyway; urgent units
  (accepting an event before Slack's 3 s deadline) jump the queue ahead of background ones.
- PostgreSQL: on the event loop through the async driver (`AsyncConnection.run_sync`), since psycopg is
  natively asynchronous; worker threads there would fight the event loop for the GIL. At most
  `POSTGRES_SLOTS` units run at once (the steady part of the pool: bursts beyond it opened and closed
  overflow connections and queued for seconds), and urgent units get the next free slot first.
"""

from __future__ import annotations

import asyncio
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
URGENT, NORMAL = 0, 1
POSTGRES_SLOTS = 8
_STOP = object()


class _PriorityGate:
    """A semaphore whose waiters are served by priority, then in arrival order."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _priority, _order, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # hand the slot straight to the next waiter
                return
        self._free += 1


class UnitRunner:
    def __init__(self, engine: AsyncEngine) -> None:
        self._async_engine = engine
        self._gate = _PriorityGate(POSTGRES_SLOTS)
        self._thread: threading.Thread | None = None
        if engine.dialect.name == "sqlite":
            self._sync_engine = create_sqlite_sync_engine(engine.url.render_as_string(hide_password=False))
            self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
            self._order = itertools.count()
            self._thread = threading.Thread(target=self._work, name="lukas-db", daemon=True)
            self._thread.start()

    @property
    def dialect(self) -> str:
        return self._async_engine.dialect.name

    async def run(self, work: Callable[[Connection], T], *, priority: int = NORMAL) -> T:
        if self._thread is None:
            await self._gate.acquire(priority)
            try:
                async with self._async_engine.connect() as connection:
                    return await connection.run_sync(work)
            finally:
                self._gate.release()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((priority, next(self._order), (work, future, loop)))
        return await future

    def _work(self) -> None:
        while True:
            _priority, _order, item = self._queue.get()
            if item is _STOP:
                return
            work, future, loop = item
            try:
                with self._sync_engine.connect() as connection:
                    result = work(connection)
            except BaseException as error:  # handed to the awaiting coroutine
                loop.call_soon_threadsafe(_settle, future, None, error)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put((2, next(self._order), _STOP))
            self._thread.join(timeout=30)
            self._sync_engine.dispose()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
