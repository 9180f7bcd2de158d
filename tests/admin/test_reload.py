"""Live reload of config.yml: valid edits apply to the next message, bad ones are refused and DMed once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import yaml

from bot.admin.reload_service import ConfigWatcher
from bot.config.live import LiveConfig
from bot.config.loader import load_config
from tests.admin.conftest import ADMIN_DM, BASE, admin_dms, rewrite
from tests.harness import Harness, message_event, running_lukas, write_config

NEW_PROMPT = "You are Lukas the Bear, now speaking like a pirate. Arr!"


async def wait_for_outcome(h: Harness, count: int, *, timeout: float = 5.0) -> None:
    """Wait until the watcher has acted `count` times in total."""
    await h.wait_until(lambda: h.lukas.watcher.outcomes >= count, timeout=timeout)


async def ask(h: Harness, text: str) -> dict:
    before = len(h.llm.chat_requests)
    await h.send(message_event(text=text))
    await h.wait_until(lambda: len(h.llm.chat_requests) > before)
    await h.settle()
    return h.llm.chat_requests[-1].body


async def test_valid_edit_applies_to_the_next_message_without_a_restart(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=BASE) as h:
        first = await ask(h, "hello")
        assert first["messages"][0]["content"].startswith("You are Lukas the Bear, a stuffed animal")
        assert first["model"] == "gpt-4.1-mini"

        rewrite(h, tmp_path / "config.yml", {"persona": {"system_prompt": NEW_PROMPT}, "llm": {"model": "gpt-4o"}})
        await wait_for_outcome(h, 1)
        assert h.lukas.watcher.last_outcome.status == "applied"
        assert h.lukas.watcher.last_outcome.changed == ["persona", "llm"]

        second = await ask(h, "hello again")
        assert second["messages"][0]["role"] == "system"
        assert second["messages"][0]["content"].startswith(NEW_PROMPT)
        assert second["model"] == "gpt-4o"
        calls = await h.llm_calls()
        assert [c.model for c in calls] == ["gpt-4.1-mini", "gpt-4o"]
        assert admin_dms(h) == []  # a good edit bothers nobody


async def test_invalid_edit_is_refused_and_admins_are_dmed_once_per_distinct_error(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yml"
    async with running_lukas(tmp_path, database_url, overrides=BASE) as h:
        good = path.read_text()
        raw = yaml.safe_load(good)
        raw["persona"]["mood"] = "grumpy"
        raw["persona"]["system_prompt"] = NEW_PROMPT
        broken = yaml.safe_dump(raw, allow_unicode=True)
        caplog.set_level(logging.ERROR, logger="bot.admin")

        path.write_text(broken)
        await wait_for_outcome(h, 1)
        await h.wait_until(lambda: len(admin_dms(h)) == 1)
        assert h.lukas.watcher.last_outcome.status == "refused"
        (dm,) = admin_dms(h)
        assert "persona.mood: unknown setting" in dm and "last good configuration stays in force" in dm
        assert any("persona.mood: unknown setting" in r.getMessage() for r in caplog.records)

        await asyncio.sleep(0.5)  # many polls of the same broken file
        path.write_text(broken)  # saved again, identical
        path.write_text("# a comment changes the file, not the error\n" + broken)
        await wait_for_outcome(h, 2)
        await asyncio.sleep(0.3)
        assert len(admin_dms(h)) == 1  # still exactly one DM

        body = await ask(h, "still you?")  # the last good config is still in force
        assert body["messages"][0]["content"].startswith("You are Lukas the Bear, a stuffed animal")
        assert h.lukas.config.current.persona.system_prompt != NEW_PROMPT

        path.write_text("persona: [this is not closed\n")  # a different error: a second DM
        await h.wait_until(lambda: len(admin_dms(h)) == 2)
        assert "not valid YAML" in admin_dms(h)[1]

        path.write_text(good)  # fixed ...
        await h.wait_until(lambda: h.lukas.watcher.last_outcome.ok)
        path.write_text(broken)  # ... and the first mistake again: worth telling again
        await h.wait_until(lambda: len(admin_dms(h)) == 3)
        assert "persona.mood: unknown setting" in admin_dms(h)[2]
        assert all(c.params["channel"] == ADMIN_DM for c in h.slack.calls_to("chat.postMessage")[-1:])


async def test_deleted_or_unreadable_file_keeps_the_last_good_config(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "config.yml"
    async with running_lukas(tmp_path, database_url, overrides=BASE) as h:
        good = path.read_text()
        path.unlink()
        await h.wait_until(lambda: len(admin_dms(h)) == 1)
        assert "file not found" in admin_dms(h)[0]
        await asyncio.sleep(0.3)
        assert len(admin_dms(h)) == 1

        path.mkdir()  # a directory where the file was: cannot be read
        await h.wait_until(lambda: len(admin_dms(h)) == 2)
        assert "cannot read the file" in admin_dms(h)[1]

        body = await ask(h, "are you there?")
        assert body["messages"][0]["content"].startswith("You are Lukas the Bear, a stuffed animal")
        path.rmdir()
        path.write_text(good.replace("a stuffed animal", "a plush animal"))
        await h.wait_until(lambda: h.lukas.watcher.last_outcome.status == "applied")
        assert "a plush animal" in h.lukas.config.current.persona.system_prompt


async def test_a_bad_banned_terms_file_refuses_the_reload(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "config.yml"
    async with running_lukas(tmp_path, database_url, overrides=BASE) as h:
        engine_before = h.lukas.services.contracts()
        rewrite(h, path, {"contracts": {"banned_terms_file": "missing-terms.txt"}})
        await h.wait_until(lambda: len(admin_dms(h)) == 1)
        assert "contracts.banned_terms_file: cannot read 'missing-terms.txt'" in admin_dms(h)[0]
        assert h.lukas.config.current.contracts.banned_terms_file is None
        assert h.lukas.services.contracts() is engine_before

        (tmp_path / "missing-terms.txt").write_text("marmalade\n")
        status, ack = await h.command("reload", user="U0ADMIN", key="reload")
        assert status == 200 and ack is None
        await h.wait_until(lambda: len(h.slack.responses("reload")) == 1)
        assert "reloaded; changed: contracts" in h.slack.responses("reload")[0]["text"]

        asked = len(h.llm.chat_requests)
        await h.send(message_event(text="I love marmalade"))  # the new engine is in force: refused
        await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 1)
        await h.settle()
        assert h.slack.posted_texts("D0DM")[0] in h.lukas.config.current.fallbacks.refusal_lines
        assert len(h.llm.chat_requests) == asked  # the model never saw it


async def test_a_cron_edit_reschedules_the_weekly_picture(tmp_path: Path, database_url: str) -> None:
    schedule = {"images": {"enabled": True, "schedule": {"cron": "0 3 1 1 *", "timezone": "UTC"}}}
    async with running_lukas(tmp_path, database_url, overrides={**BASE, **schedule}) as h:
        await h.wait_until(lambda: h.lukas.images.next_run() is not None)
        first = h.lukas.images.next_run()
        assert (first.month, first.day, first.hour, first.minute) == (1, 1, 3, 0)

        moved_cron = {"images": {"enabled": True, "schedule": {"cron": "30 4 2 2 *", "timezone": "UTC"}}}
        rewrite(h, tmp_path / "config.yml", moved_cron)
        await h.wait_until(lambda: h.lukas.images.next_run() != first)
        moved = h.lukas.images.next_run()
        assert (moved.month, moved.day, moved.hour, moved.minute) == (2, 2, 4, 30)
        health = await h.http.get(f"{h.url}/healthz")
        assert (await health.json())["next_image_run"] == moved.isoformat()

        rewrite(h, tmp_path / "config.yml", {"images": {"enabled": False}})
        await h.wait_until(lambda: h.lukas.images.state == "disabled")
        assert h.lukas.images.next_run() is None  # paused


async def test_half_written_file_is_retried_not_applied_or_reported(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.yml", llm_base_url="http://127.0.0.1:9/v1", overrides=BASE)
    live = LiveConfig(load_config(path), path=path)
    alerts: list[str] = []

    async def alert(kind: str, text: str, *, once_key: str | None = None) -> bool:
        alerts.append(text)
        return True

    watcher = ConfigWatcher(live, alert=alert)
    watcher.prime()
    full = path.read_text().replace("a stuffed animal", "a velvet animal")
    path.write_text(full[: len(full) // 2])  # the editor has written half of it
    assert await watcher.poll_once() is None  # seen once: wait and look again
    path.write_text(full)  # the save completes
    assert await watcher.poll_once() is None
    outcome = await watcher.poll_once()
    assert outcome is not None and outcome.status == "applied" and outcome.changed == ["persona"]
    assert alerts == [] and live.version == 2

    path.write_text(full[: len(full) // 3])  # a truncated file that stays truncated is refused
    assert await watcher.poll_once() is None
    outcome = await watcher.poll_once()
    assert outcome is not None and outcome.status == "refused" and len(alerts) == 1
    assert await watcher.poll_once() is None  # nothing new: no more work, no more DMs
    assert "a velvet animal" in live.current.persona.system_prompt
