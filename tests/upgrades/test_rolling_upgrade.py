"""A rolling upgrade across the newest migration (issue 23, item 7), with real processes of both versions.

"The previous release" is the code at the newest first-parent commit whose migrations stop before today's newest
one (found in git history, so it moves with every new migration). It creates the database and answers; today's
code migrates it while that process runs; both then answer direct messages side by side, the previous release
reading history from the newer schema; finally the previous release restarts on the database that is now ahead
of it. Opt-in (LUKAS_TEST_ROLLING=1, or scripts/check-rolling-upgrade): three processes and two migration runs take
30-90 s per database on a shared 2-core machine, too slow for every run of the suite.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from bot.store import migrate
from tests.harness import SIGNING_SECRET, write_config
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn
from tests.upgrades.helpers import (
    lukas_command,
    lukas_run,
    newest_and_previous,
    previous_release,
    release_config,
    unpack_release,
)


def user_turns(request_messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in request_messages if m["role"] == "user"]


ROLLING_ENV = "LUKAS_TEST_ROLLING"


@pytest.mark.skipif(
    not os.environ.get(ROLLING_ENV), reason=f"slow: set {ROLLING_ENV}=1 (scripts/check-rolling-upgrade)"
)
async def test_previous_and_new_release_answer_side_by_side(tmp_path: Path, database_url: str) -> None:
    release = previous_release()
    if release is None:
        pytest.skip("needs the project's git history (a checkout, not an exported tree)")
    commit, old_head = release
    head, _ = newest_and_previous()
    old = unpack_release(commit, tmp_path / "previous")

    async with SlackStandIn() as slack, OpenAIStandIn() as llm, aiohttp.ClientSession() as http:
        slack.add_user("U0ANNA", display_name="Anna")
        env = {
            "SLACK_BOT_TOKEN": "xoxb-rolling",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "OPENAI_API_KEY": "sk-rolling-000000000000",
            "OPENAI_BASE_URL": llm.base_url,
            "DATABASE_URL": database_url,
            "LUKAS_DATA_DIR": str(tmp_path / "data"),
        }
        old_env = {**env, "LUKAS_CONFIG": str(release_config(old, tmp_path / "old.yml", llm_base_url=llm.base_url))}
        new_config = write_config(
            tmp_path / "new.yml", llm_base_url=llm.base_url, overrides={"logging": {"level": "WARNING"}}
        )
        new_env = {**env, "LUKAS_CONFIG": str(new_config)}

        def answered(channel: str, count: int) -> bool:
            return len(slack.posted_texts(channel)) >= count

        async def until(condition: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 30
            while not condition():
                assert time.monotonic() < deadline, "no answer in time"
                await asyncio.sleep(0.05)

        created = lukas_command(old, "db", "upgrade", env=old_env)
        assert created.returncode == 0, created.stderr
        assert await migrate.database_revision(database_url) == old_head

        async with lukas_run(old, tmp_path / "a", env=old_env) as previous:
            await previous.dm(http, channel="D0OLD", text="Hello from before the upgrade.")
            await until(lambda: answered("D0OLD", 1))

            upgraded = lukas_command(None, "db", "upgrade", env=new_env)
            assert upgraded.returncode == 0, upgraded.stderr
            assert upgraded.stdout.startswith(f"database upgraded from revision {old_head} to {head}")
            assert lukas_command(None, "db", "upgrade", "--check", env=new_env).returncode == 0

            async with lukas_run(None, tmp_path / "b", env=new_env) as new:
                await previous.dm(http, channel="D0OLD", text="Are you still there?")
                await new.dm(http, channel="D0NEW", text="Hello from the new release.")
                await until(lambda: answered("D0OLD", 2) and answered("D0NEW", 1))

        # the previous release restarts on a database that is ahead of it (a crash or a reschedule mid-rollout)
        tolerant = (old / "bot" / "store" / "migrate_logic.py").exists()
        async with lukas_run(old, tmp_path / "a2", *(() if tolerant else ("--no-upgrade",)), env=old_env) as again:
            await again.dm(http, channel="D0OLD", text="Back again.")
            await until(lambda: answered("D0OLD", 3))

    turns = [user_turns(request.body["messages"]) for request in llm.chat_requests]
    assert ["Anna: Hello from before the upgrade.", "Anna: Are you still there?"] in [t[-2:] for t in turns]
    assert ["Anna: Hello from the new release."] in turns
    assert any(t[-1] == "Anna: Back again." and "Anna: Are you still there?" in t for t in turns)
    assert await migrate.database_revision(database_url) == head  # nobody downgraded it
