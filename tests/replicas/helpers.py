"""Shared by the replica tests: fast leases, a simulated kill, and reading the lease columns."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update

from bot.store.models import Message
from tests.harness import Harness

FAST_LEASES: dict[str, Any] = {"replicas": {"lease_seconds": 2, "sweep_seconds": 0.1, "posting_grace_seconds": 1}}


async def kill(h: Harness) -> None:
    """As SIGKILL does: answers vanish mid-way, nothing is handed back, leases are no longer renewed, and the
    process takes no more work (its HTTP server stays up, but no test sends to it afterwards)."""
    chat = h.lukas.services.chat
    chat._taking = False
    for task in list(h.lukas._background):
        if task.get_name() in ("lease-keeper", "chat-sweeper"):
            task.cancel()
    chat.keeper._held.clear()
    tasks = list(chat._tasks.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def expire_leases(h: Harness) -> None:
    async with h.lukas.services.sessions() as session:
        await session.execute(update(Message).where(Message.sender == "user").values(lease_until=0.0))
        await session.commit()


async def user_rows(h: Harness) -> list[Message]:
    return [m for m in await h.messages() if m.sender == "user"]
