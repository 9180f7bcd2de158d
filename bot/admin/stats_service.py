"""Save the running bot's in-memory metrics to the database, and read them back for `lukas stats`."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from collections.abc import Callable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.admin import stats_logic
from bot.admin.stats_logic import SavedStats
from bot.config.live import LiveConfig
from bot.contracts import ContractMetricsSnapshot
from bot.store.models import MetricsSnapshot, utcnow

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
KEEP_FOR = dt.timedelta(days=30)  # snapshots of instances gone this long are deleted


def instance_name() -> str:
    """Which Lukas saved a snapshot: host and process id (a container's host name is its id)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class MetricsRecorder:
    def __init__(
        self,
        *,
        sessions: Sessions,
        config: LiveConfig,
        contracts: Callable[[], ContractMetricsSnapshot],
        breakers: Callable[[], dict[str, str]],
        version: str,
        started_at: dt.datetime,
        instance_id: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._config = config
        self._contracts = contracts
        self._breakers = breakers
        self._version = version
        self._started_at = started_at
        self.instance_id = instance_id or instance_name()

    async def save(self) -> None:
        """Replace this instance's row with the metrics as they are now (one short transaction)."""
        now = utcnow()
        payload = stats_logic.encode(contracts=self._contracts(), breakers=self._breakers())
        async with self._sessions() as session:
            await session.execute(delete(MetricsSnapshot).where(MetricsSnapshot.instance_id == self.instance_id))
            await session.execute(delete(MetricsSnapshot).where(MetricsSnapshot.taken_at < now - KEEP_FOR))
            session.add(
                MetricsSnapshot(
                    instance_id=self.instance_id,
                    version=self._version,
                    started_at=self._started_at,
                    taken_at=now,
                    payload=payload,
                )
            )
            await session.commit()

    async def save_quietly(self) -> bool:
        try:
            await self.save()
            return True
        except Exception as exc:  # metrics must never hurt chat; the next save tries again
            log.warning("could not save the metrics snapshot for `lukas stats`: %s", type(exc).__name__)
            return False

    async def run(self) -> None:
        """The background task: save every usage.metrics_snapshot_seconds."""
        while True:
            await asyncio.sleep(self._config.current.usage.metrics_snapshot_seconds)
            await self.save_quietly()


async def saved_stats(sessions: Sessions) -> list[SavedStats]:
    async with sessions() as session:
        rows = list(await session.scalars(select(MetricsSnapshot).order_by(MetricsSnapshot.taken_at.desc())))
    return [
        stats_logic.decode(
            row.payload,
            instance_id=row.instance_id,
            version=row.version,
            started_at=_utc(row.started_at),
            taken_at=_utc(row.taken_at),
        )
        for row in rows
    ]
