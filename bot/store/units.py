"""Short blocking units of work on worker threads: one thread hop per transaction.

The chat hot path (accept, load, mark posting, record) runs here. With aiosqlite every statement is several
hops between the event loop and the driver's thread, which cost ~13 ms of CPU per message; a whole
transaction as one Core unit on a worker thread costs a fraction of that. PostgreSQL gets a few workers,
SQLite one (it has one writer anyway). Urgent units (accepting an event before Slack's 3 s ack deadline) jump
the queue ahead of background ones (recording a reply).
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from bot.store.db import create_sync_engine

T = TypeVar("T")
URGENT, NORMAL = 0, 1
_STOP = object()


class UnitRunner:
    def __init__(self, url: str | None = None) -> None:
        self.engine = create_sync_engine(url)
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()
        workers = 1 if self.engine.dialect.name == "sqlite" else 8
        self._threads = [threading.Thread(target=self._work, name=f"lukas-db-{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    async def run(self, work: Callable[[Connection], T], *, priority: int = NORMAL) -> T:
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
                with self.engine.connect() as connection:  # a Core connection: no ORM unit-of-work on the hot path
                    result = work(connection)
            except BaseException as error:  # handed to the awaiting coroutine
                loop.call_soon_threadsafe(_settle, future, None, error)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)

    def close(self) -> None:
        for _thread in self._threads:
            self._queue.put((2, next(self._order), _STOP))
        for thread in self._threads:
            thread.join(timeout=30)
        self.engine.dispose()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
