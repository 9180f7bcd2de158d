"""A due summary waits: until its conversation has been quiet for memory.refresh_quiet_seconds (a nudge restarts
the wait) and until no answer is being worked on, so it never competes with the next message; flush() and a
shutdown's drain() do not wait."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.chat.memory_service import SummaryKeeper
from bot.chat.prompting import PromptPreparer
from bot.config.live import LiveConfig
from bot.config.loader import load_config
from tests.harness import write_config


def keeper(tmp_path: Path, *, quiet: float, busy: list[bool]) -> tuple[SummaryKeeper, list[tuple[int, float]]]:
    path = write_config(
        tmp_path / "config.yml",
        llm_base_url="http://127.0.0.1:9",
        overrides={"memory": {"refresh_quiet_seconds": quiet}},
    )
    config = LiveConfig(load_config(path), path=path)
    memory = SummaryKeeper(
        config=config,
        store=None,  # type: ignore[arg-type]  # refresh() is replaced below: nothing is read
        gateway=None,
        prompting=PromptPreparer(config=config, contracts=None),
        busy=lambda: busy[0],
    )
    refreshed: list[tuple[int, float]] = []

    async def refresh(conversation_id: int) -> str:
        refreshed.append((conversation_id, time.monotonic()))
        return "none"

    memory.refresh = refresh  # type: ignore[method-assign]
    return memory, refreshed


async def test_a_refresh_waits_for_quiet_and_a_nudge_restarts_the_wait(tmp_path: Path) -> None:
    memory, refreshed = keeper(tmp_path, quiet=0.3, busy=[False])
    started = time.monotonic()
    memory.nudge(7)
    await asyncio.sleep(0.2)
    memory.nudge(7)  # another reply in the same conversation: one refresh, later
    memory.nudge(8)
    assert memory.in_flight == 2
    await asyncio.sleep(0.2)
    assert refreshed == []  # 0.4 s after the first nudge, but only 0.2 s after the last
    await asyncio.sleep(0.3)
    assert sorted(c for c, _at in refreshed) == [7, 8]
    at = dict(refreshed)
    assert at[7] - started >= 0.5 and at[8] - started >= 0.5
    assert memory.in_flight == 0


async def test_a_refresh_waits_while_answers_are_in_flight_and_flush_does_not_wait(tmp_path: Path) -> None:
    busy = [True]
    memory, refreshed = keeper(tmp_path, quiet=0, busy=busy)
    memory.nudge(1)
    await asyncio.sleep(0.3)
    assert refreshed == []  # quiet, but answers are being worked on
    busy[0] = False
    await asyncio.sleep(0.25)
    assert [c for c, _at in refreshed] == [1]

    slow, later = keeper(tmp_path, quiet=60, busy=[True])
    slow.nudge(2)
    await slow.flush(5)
    assert [c for c, _at in later] == [2]


async def test_a_shutdown_drops_refreshes_still_waiting(tmp_path: Path) -> None:
    memory, refreshed = keeper(tmp_path, quiet=60, busy=[False])
    memory.nudge(3)
    await memory.drain(5)
    assert refreshed == [] and memory.in_flight == 0
