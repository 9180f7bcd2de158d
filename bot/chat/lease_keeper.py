"""The leases one running Lukas holds: renewed in one statement for all of them (the heartbeat), checked before
every write and every post, handed back at shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.chat import lease_logic
from bot.store import leases
from bot.store.leases import Lease
from bot.store.units import UnitRunner

log = logging.getLogger(__name__)


@dataclass
class _Held:
    lease: Lease
    safe_until: float
    lost: bool = False


class LeaseKeeper:
    def __init__(
        self,
        *,
        store: UnitRunner,
        owner: str,
        host: str,
        ttl: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owner = owner
        self._store = store
        self._host = host
        self._ttl = ttl
        self._clock = clock
        self._held: dict[int, _Held] = {}
        self.renew_failures = 0

    @property
    def ttl(self) -> float:
        return self._ttl()

    def now(self) -> float:
        return self._clock()

    def hold(self, lease: Lease, *, asked_at: float) -> None:
        self._held[lease.message_id] = _Held(lease, lease_logic.safe_until(asked_at=asked_at, ttl=self.ttl))

    def drop(self, message_id: int) -> None:
        self._held.pop(message_id, None)

    def owns(self, message_id: int) -> bool:
        held = self._held.get(message_id)
        if held is None:
            return False
        return lease_logic.still_ours(now=self._clock(), safe_until=held.safe_until, lost=held.lost)

    def lease(self, message_id: int) -> Lease | None:
        held = self._held.get(message_id)
        return held.lease if held else None

    def held(self) -> dict[int, int]:
        return {message_id: held.lease.epoch for message_id, held in self._held.items() if not held.lost}

    async def renew_once(self) -> None:
        snapshot = self.held()
        asked_at = self._clock()
        ttl = self.ttl
        kept = await self._store.run(
            lambda s: leases.renew(s, owner=self.owner, held=snapshot, ttl=ttl, host=self._host)
        )
        until = lease_logic.safe_until(asked_at=asked_at, ttl=ttl)
        for message_id in snapshot:
            held = self._held.get(message_id)
            if held is None:
                continue
            if message_id in kept:
                held.safe_until = max(held.safe_until, until)
            else:
                held.lost = True
                log.warning("lost the lease on message %s (another replica took it over); not posting", message_id)

    async def run(self) -> None:
        """The heartbeat: renew every lease held, a third of the lease time apart."""
        while True:
            try:
                await self.renew_once()
                self.renew_failures = 0
            except Exception as exc:
                self.renew_failures += 1
                log.warning("could not renew leases (%s); retrying", type(exc).__name__)
            await asyncio.sleep(lease_logic.renew_every(ttl=self.ttl))

    async def release(self, message_ids: list[int]) -> list[int]:
        """Hand these answers back (shutdown): any replica takes them over at its next sweep."""
        handing = {i: e for i, e in self.held().items() if i in set(message_ids)}
        released = await self._store.run(lambda s: leases.release(s, owner=self.owner, held=handing))
        for message_id in handing:
            self.drop(message_id)
        return released
