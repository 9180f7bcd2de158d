"""Units that wait together run back to back on one connection (issue 17): each is still its own transaction,
a failure belongs to its unit alone, and nothing one unit leaves open leaks into the next."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlalchemy import Connection, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.models import Instance
from bot.store.units import URGENT, UnitRunner


async def test_a_failing_unit_fails_alone_and_an_open_read_does_not_leak(db_engine: AsyncEngine) -> None:
    runner = UnitRunner(db_engine)

    def add(i: int):  # type: ignore[no-untyped-def]
        def work(s: Connection) -> int:
            s.execute(Instance.__table__.insert().values(id=f"unit-{i}", host="h", started_at=0.0, heartbeat_at=0.0))
            if i % 5 == 0:
                raise ValueError(f"unit {i} breaks after writing")  # its write must be rolled back
            s.commit()
            return i

        return work

    def count(s: Connection) -> int:  # reads and commits nothing: the runner must not let this stay open
        return int(s.scalar(select(func.count()).select_from(Instance)) or 0)

    try:
        results = await asyncio.gather(
            *(runner.run(add(i), priority=URGENT if i % 2 else 1) for i in range(1, 31)),
            runner.run(count),
            return_exceptions=True,
        )
        failed = [r for r in results[:30] if isinstance(r, ValueError)]
        assert [str(e) for e in failed] == [f"unit {i} breaks after writing" for i in (5, 10, 15, 20, 25, 30)]
        assert sorted(r for r in results[:30] if isinstance(r, int)) == [i for i in range(1, 31) if i % 5]
        assert await runner.run(count) == 24  # the six broken units wrote nothing
        await runner.run(lambda s: (s.execute(update(Instance).values(host="x")), s.commit()))  # no lock left over
        assert await runner.run(lambda s: s.scalar(select(func.count()).where(Instance.host == "x"))) == 24
    finally:
        await asyncio.to_thread(runner.close)


async def test_a_unit_whose_caller_gave_up_before_it_ran_is_skipped(tmp_path: Path) -> None:
    from bot.store.db import create_engine

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'units.db'}")
    runner = UnitRunner(engine)  # SQLite: the units run on a thread, so the first one can be held there
    release = threading.Event()
    ran: list[str] = []

    def held(_s: Connection) -> None:
        ran.append("held")
        release.wait(timeout=10)

    try:
        first = asyncio.ensure_future(runner.run(held))
        await asyncio.sleep(0.05)  # "held" is running on the database thread
        late = asyncio.ensure_future(runner.run(lambda s: ran.append("late")))
        await asyncio.sleep(0.05)  # "late" waits in the queue
        late.cancel()
        release.set()
        await first
        await runner.run(lambda s: ran.append("after"))
        assert ran == ["held", "after"]
    finally:
        await asyncio.to_thread(runner.close)
        await engine.dispose()


async def test_channel_gates_exist_only_where_a_channel_limit_is_set(tmp_path: Path) -> None:
    """A gate per DM ever seen grew with every new person (issue 17); unlimited channels share a no-op."""
    import yaml

    from bot.chat import guards as guards_module
    from bot.chat.guards import ChatGuards
    from bot.config.live import LiveConfig
    from bot.config.loader import load_config
    from tests.harness import REPO_CONFIG, deep_merge

    def live(overrides: dict[str, object]) -> LiveConfig:
        path = tmp_path / "config.yml"
        path.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(REPO_CONFIG.read_text()), overrides)))
        return LiveConfig(load_config(path), path=path)

    open_guards = ChatGuards(config=live({}))
    for i in range(50):
        async with open_guards.channel_gate(f"D{i:05d}"):
            pass
    assert open_guards._channel_gates == {}

    limited = ChatGuards(config=live({"channels": {"dm": {"limits": {"max_in_flight": 1}}}}))
    first = limited.channel_gate("D00001")
    assert limited.channel_gate("D00001") is first  # one gate per limited DM, kept while in use
    async with first:
        for i in range(guards_module.MAX_IDLE_GATES + 5):
            async with limited.channel_gate(f"D9{i:05d}"):
                pass
        assert limited.channel_gate("D00001") is first  # busy: never dropped
    assert len(limited._channel_gates) <= guards_module.MAX_IDLE_GATES
