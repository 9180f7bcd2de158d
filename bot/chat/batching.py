"""Group commit for the intake: what arrives while one write runs goes together in the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupWriter(Generic[Item, Result]):
    """Calls `write` with every item waiting, at most `max_batch` at a time, one write after another.

    A lone item is written at once (no waiting for company); under a burst each write carries all that queued
    during the previous one, so 200 events cost a handful of transactions instead of 200. A failed write fails
    every item in it (each caller answers Slack with an error, and Slack delivers again).
    """

    def __init__(self, write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]], *, max_batch: int = 100):
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # a caller that gave up must not leave "never retrieved" warnings
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="group-writer")
        return await asyncio.shield(future)  # a caller that gives up does not cancel the others' write

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            try:
                results = await self._write([item for item, _future in batch])
            except asyncio.CancelledError:
                for _item, future in batch + self._waiting:
                    future.cancel()
                raise
            except Exception as error:
                for _item, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_item, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
