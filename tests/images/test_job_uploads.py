"""The weekly picture end to end on the loopback stand-ins and real databases: uploads that fail after a paid
generation keep the image and post it later, once per channel."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from bot.images import repo
from bot.images.slots_logic import slot_key
from tests.images.conftest import (
    CHANNEL,
    KEY,
    SLOT,
    AlertRecorder,
    FakeClock,
    MakeJob,
    all_rows,
    completed_channels,
    kept_files,
    kept_in_database,
)
from tests.standins.openai_api import TINY_PNG, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

# ----- uploads that fail after a paid generation


async def test_upload_failure_keeps_the_image_and_retry_posts_it(
    make_job: MakeJob,
    image_api: OpenAIStandIn,
    slack_api: SlackStandIn,
    alerts: AlertRecorder,
    sessions,
    tmp_path: Path,
) -> None:
    slack_api.channel_errors[CHANNEL] = "not_in_channel"
    job = await make_job()
    row = await job.run_slot(SLOT)
    assert row.status == "failed"
    assert row.upload_state == "pending"
    assert "not_in_channel" in row.error and "/invite @Lukas" in row.error
    assert "lukas image --retry-uploads" in row.error
    assert row.cost_usd == pytest.approx(0.042) and row.attempts == 1
    assert await kept_in_database(sessions) == {row.id: TINY_PNG}
    assert row.local_path is None and kept_files(tmp_path) == []  # in the database, not on this replica's disk
    assert alerts.kinds() == ["image_upload"]

    del slack_api.channel_errors[CHANNEL]  # an admin invites Lukas
    assert await job.retry_uploads() == 1
    [stored] = await all_rows(sessions)
    assert stored.status == "succeeded" and stored.upload_state == "done" and stored.error is None
    assert stored.slack_file_id and stored.channel_id == CHANNEL
    assert list(slack_api.uploads.values())[-1] == TINY_PNG
    assert await kept_in_database(sessions) == {}
    assert alerts.kinds() == ["image_upload"]  # told once, not again at every retry
    assert len(image_api.image_requests) == 1  # never generated (or paid) twice
    assert await job.retry_uploads() == 0


async def test_a_kept_image_is_posted_at_the_next_run(
    make_job: MakeJob, image_api: OpenAIStandIn, slack_api: SlackStandIn, clock: FakeClock, sessions
) -> None:
    slack_api.fail("files.completeUploadExternal", "internal_error")
    job = await make_job()
    first = await job.run_slot(SLOT)
    assert (first.status, first.upload_state) == ("failed", "pending")

    next_week = SLOT + dt.timedelta(weeks=1)
    clock.now = next_week + dt.timedelta(seconds=1)
    second = await job.run_slot(next_week)
    assert second.status == "succeeded"
    rows = await all_rows(sessions)
    assert [(r.slot_key, r.status, r.upload_state) for r in rows] == [
        (KEY, "succeeded", "done"),
        (slot_key(next_week), "succeeded", "done"),
    ]
    assert len(image_api.image_requests) == 2
    assert completed_channels(slack_api) == [CHANNEL, CHANNEL, CHANNEL]  # failed once, then both posted


async def test_each_channel_gets_the_picture_once(
    make_job: MakeJob, image_api: OpenAIStandIn, slack_api: SlackStandIn, sessions, tmp_path: Path
) -> None:
    slack_api.channel_errors["C0CLOSED"] = "channel_not_found"
    job = await make_job(overrides={"images": {"channels": [CHANNEL, "C0CLOSED"]}})
    row = await job.run_slot(SLOT)
    assert len(image_api.image_requests) == 1  # one generation for every channel
    assert row.status == "failed" and row.upload_state == "pending"
    assert row.channel_id == CHANNEL and row.slack_file_id == "F000001"
    assert "C0CLOSED: channel_not_found" in row.error

    slack_api.channel_errors.clear()
    assert await job.retry_uploads() == 1
    assert completed_channels(slack_api) == [CHANNEL, "C0CLOSED", "C0CLOSED"]
    [stored] = await all_rows(sessions)
    assert stored.channel_id == f"{CHANNEL},C0CLOSED" and stored.status == "succeeded"
    assert stored.slack_file_id == "F000001"  # the first channel's file


async def test_concurrent_upload_retries_post_once(
    make_job: MakeJob, slack_api: SlackStandIn, image_api, sessions
) -> None:
    slack_api.channel_errors[CHANNEL] = "not_in_channel"
    job_a, job_b = await make_job(), await make_job()
    await job_a.run_slot(SLOT)
    slack_api.channel_errors.clear()
    slack_api.latency = 0.05
    results = await asyncio.gather(job_a.retry_uploads(), job_b.retry_uploads())
    assert sorted(results) == [0, 1]
    assert completed_channels(slack_api) == [CHANNEL, CHANNEL]


async def test_a_picture_kept_nowhere_is_reported_lost(
    make_job: MakeJob, slack_api: SlackStandIn, sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError("database refused")

    monkeypatch.setattr(repo, "keep_file", refuse)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "images").write_text("a file where the folder should be")
    slack_api.channel_errors[CHANNEL] = "not_in_channel"
    job = await make_job()
    row = await job.run_slot(SLOT)
    assert (row.upload_state, row.local_path) == ("lost", None)
    assert "could not be kept and is lost" in row.error
    slack_api.channel_errors.clear()
    assert await job.retry_uploads() == 0
    assert completed_channels(slack_api) == [CHANNEL]  # only the refused first attempt
