"""What the `/lukas` commands do, over the running bot's services. Returns text; Slack I/O is bot/slack/commands.py.

Slow answers (status, usage, reload, image now) run as background tasks owned here, so Lukas.stop can wait
for them, and the Slack request is acknowledged at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy import select

from bot.admin import reload_logic, status_logic, usage_logic
from bot.admin.reload_service import ConfigWatcher
from bot.admin.status_logic import ImageFacts, MemoryFacts, StatusFacts
from bot.admin.usage_service import collect_usage
from bot.chat import privacy
from bot.contracts import render_metrics
from bot.store import memory_repo
from bot.store.models import GeneratedImage

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


def code_block(lines: list[str]) -> str:
    return "```\n" + "\n".join(lines) + "\n```"


class AdminCommands:
    def __init__(
        self,
        *,
        services: Any,
        watcher: ConfigWatcher,
        scheduler: Any,
        health: HealthCheck,
        version: str,
    ) -> None:
        self.services = services
        self.config = services.config
        self.watcher = watcher
        self.scheduler = scheduler
        self._health = health
        self._version = version
        self._tasks: set[asyncio.Task[None]] = set()
        self.pictures: Any = None  # bot.images.requests.PictureDesk, for `/lukas draw`

    # ----- background work
    def spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, timeout: float = 5.0) -> None:
        """At shutdown: let answers in flight finish briefly, then cancel the rest (an image run included)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ----- commands
    async def status(self) -> str:
        _healthy, details = await self._health()
        engine = self.services.contracts()
        contracts = render_metrics(engine.metrics()) if engine is not None else []
        last = self.watcher.last_outcome
        database_ok = details.get("database") == "ok"
        facts = StatusFacts(
            version=self._version,
            uptime_seconds=time.time() - self.services.started_at,
            chain=tuple(spec.key for spec in self.services.gateway.chain()),
            breakers=self.services.gateway.breaker_states(),
            database_ok=database_ok,
            scheduler=self.scheduler.state,
            next_image_run=self.scheduler.next_run(),
            last_image=await self._last_image() if database_ok else None,
            config_path=str(self.config.file),
            last_reload=reload_logic.summary(last) if last is not None else None,
            contracts=contracts,
            memory=await self._memory_facts() if database_ok else None,
            stuck=await self._stuck() if database_ok else None,
        )
        return code_block(status_logic.status_lines(facts))

    async def _memory_facts(self) -> MemoryFacts | None:
        memory = self.config.current.memory
        try:
            summaries = await self.services.store.run(memory_repo.count_summaries)
        except Exception as exc:
            log.warning("status: cannot count the summaries: %s", type(exc).__name__)
            return None
        return MemoryFacts(enabled=memory.enabled, read_threads=memory.read_threads, summaries=summaries)

    async def _stuck(self) -> dict[str, int] | None:
        try:
            return await self.services.chat.stuck_counts()
        except Exception:
            return None

    async def _last_image(self) -> ImageFacts | None:
        try:
            async with self.services.sessions() as session:
                row = await session.scalar(select(GeneratedImage).order_by(GeneratedImage.id.desc()).limit(1))
        except Exception as exc:
            log.warning("status: cannot read the last picture: %s", type(exc).__name__)
            return None
        return _image_facts(row) if row is not None else None

    async def usage(self, days: int) -> str:
        config = self.config.current
        data = await collect_usage(self.services.sessions, days=days, month_timezone=config.images.schedule.timezone)
        lines = usage_logic.report_lines(
            data=data,
            days=days,
            chat_budget_usd=config.usage.chat_monthly_budget_usd,
            image_budget_usd=config.images.monthly_budget_usd,
        )
        return code_block(lines)

    async def reload(self) -> str:
        outcome = self.watcher.reload_now()
        await self.watcher.report(outcome, automatic=False)
        text = reload_logic.outcome_text(outcome)
        return f"🐻 {text}" if outcome.ok else code_block(text.splitlines())

    async def forget(self, user_id: str, *, confirm: bool) -> str:
        """`/lukas forget [confirm]`: how many of the person's messages would be erased, or erase them."""
        run_db = self.services.chat.run_db
        stored = await privacy.count_for_user(run_db, user_id=user_id)
        if not confirm or stored == 0:
            return privacy.forget_text(stored=stored, erased=None)
        batch = self.config.current.retention.batch_size
        erased = await privacy.forget_user(run_db, user_id=user_id, batch_size=batch)
        return privacy.forget_text(stored=stored, erased=erased)

    async def image_now(self) -> str:
        if self.scheduler.job is None:
            return "I can't paint in this installation: the weekly image job is not available 🐻"
        row = await self.scheduler.run_now()
        return status_logic.image_now_text(_image_facts(row))


def _image_facts(row: GeneratedImage) -> ImageFacts:
    created = row.created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return ImageFacts(
        status=row.status,
        created_at=created,
        cost_usd=float(row.cost_usd or 0.0),
        theme=row.theme,
        permalink=row.slack_permalink,
        error=row.error,
    )
