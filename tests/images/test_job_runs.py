"""The weekly picture end to end on the loopback stand-ins and real databases: runs that post, exactly once,
missed slots and the scheduler."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
from pathlib import Path

import pytest
import yaml

from bot.store.models import GeneratedImage
from tests.images.conftest import (
    CHANNEL,
    KEY,
    SLOT,
    FakeClock,
    MakeJob,
    all_rows,
    completions,
    config_dict,
    kept_files,
    live_config,
)
from tests.standins.openai_api import TINY_PNG, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

# ----- the happy paths


async def test_weekly_slot_generates_posts_and_records(
    make_job: MakeJob, image_api: OpenAIStandIn, slack_api: SlackStandIn, sessions, tmp_path: Path, alerts
) -> None:
    job = await make_job()
    row = await job.run_slot(SLOT)

    # what the image API was asked
    assert len(image_api.image_requests) == 1
    sent = image_api.image_requests[0]
    assert sent.body["model"] == "gpt-image-2"
    assert sent.body["size"] == "1024x1024"
    assert sent.body["quality"] == "medium"
    assert sent.body["n"] == 1
    assert sent.body["prompt"].startswith("A friendly stuffed teddy bear mascot named Lukas")
    assert "with a pie and grateful expression" in sent.body["prompt"]  # 23 November: thanksgiving
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert "x-stainless-retry-count" not in sent.headers or sent.headers["x-stainless-retry-count"] == "0"

    # what Slack received: the exact bytes, in the configured channel, with title, alt text and a caption
    assert list(slack_api.uploads.values()) == [TINY_PNG]
    url_call = slack_api.calls_to("files.getUploadURLExternal")[0].params
    assert url_call["filename"].endswith(".png")
    assert int(url_call["length"]) == len(TINY_PNG)
    assert url_call["alt_txt"].startswith("Illustration of Lukas")
    [complete] = completions(slack_api)
    assert complete["channel_id"] == CHANNEL
    files = json.loads(complete["files"])
    assert files[0]["title"].startswith("Lukas the Bear, week of 23 November 2026")
    assert complete["initial_comment"].startswith("Happy Thanksgiving week from Lukas!")

    # what the database holds
    [stored] = await all_rows(sessions)
    for candidate in (row, stored):
        assert candidate.slot_key == KEY
        assert candidate.status == "succeeded"
        assert candidate.error is None
        assert candidate.attempts == 1
        assert candidate.cost_usd == pytest.approx(0.042)
        assert candidate.theme == "autumn" and candidate.occasion == "thanksgiving"
        assert (candidate.model, candidate.size, candidate.quality) == ("gpt-image-2", "1024x1024", "medium")
        assert candidate.upload_state == "done"
        assert candidate.channel_id == CHANNEL
        assert candidate.slack_file_id == "F000001"
        assert candidate.slack_permalink is None and not slack_api.calls_to("files.info")  # no files:read scope
        assert candidate.revised_prompt.startswith("revised: ")
        assert candidate.local_path is None
    assert kept_files(tmp_path) == []  # posted everywhere: nothing kept
    assert alerts.alerts == []


async def test_url_responses_are_downloaded(make_job: MakeJob, image_api: OpenAIStandIn, slack_api, sessions) -> None:
    image_api.image_mode = "url"
    row = await (await make_job()).run_slot(SLOT)
    assert row.status == "succeeded", row.error
    assert [r.path for r in image_api.requests] == ["/v1/images/generations", "/files/bear.png"]
    assert list(slack_api.uploads.values()) == [TINY_PNG]


async def test_cost_from_reported_usage(make_job: MakeJob, image_api: OpenAIStandIn, sessions) -> None:
    image_api.image_usage = {
        "input_tokens": 50,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
        "output_tokens": 1056,
        "total_tokens": 1106,
    }
    job = await make_job(overrides={"images": {"token_prices": {"gpt-image-2": {"text_input": 5, "output": 40}}}})
    row = await job.run_slot(SLOT)
    assert row.status == "succeeded"
    assert row.cost_usd == pytest.approx((50 * 5 + 1056 * 40) / 1_000_000)


async def test_caption_writer_is_used_and_falls_back_to_the_template(
    make_job: MakeJob, slack_api: SlackStandIn, clock: FakeClock
) -> None:
    seen = []

    async def writer(plan) -> str:
        seen.append(plan)
        return "Gobble gobble! 🐻 Lukas brought pie."

    await (await make_job(caption_writer=writer)).run_slot(SLOT)
    assert completions(slack_api)[-1]["initial_comment"] == "Gobble gobble! 🐻 Lukas brought pie."
    assert seen[0].occasion == "thanksgiving"

    async def broken(plan) -> str:
        raise RuntimeError("the chat model is down")

    clock.now = SLOT + dt.timedelta(days=7, seconds=1)
    await (await make_job(caption_writer=broken)).run_slot(SLOT + dt.timedelta(days=7))
    assert completions(slack_api)[-1]["initial_comment"].startswith("Happy ")


async def test_consecutive_weeks_get_different_themes(make_job: MakeJob, image_api, clock: FakeClock, sessions) -> None:
    job = await make_job(overrides={"images": {"occasions": []}})
    themes = []
    for week in range(4):
        slot = SLOT + dt.timedelta(weeks=week)
        clock.now = slot + dt.timedelta(seconds=1)
        themes.append((await job.run_slot(slot)).theme)
    assert all(a != b for a, b in itertools.pairwise(themes)), themes
    assert "autumn" in themes


async def test_run_now_uses_a_manual_key(make_job: MakeJob, image_api, sessions) -> None:
    job = await make_job()
    first = await job.run_now()
    assert first.status == "succeeded"
    assert first.slot_key.startswith("manual:2026-11-23T09:00:01")
    assert len(image_api.image_requests) == 1


# ----- exactly once


async def test_two_concurrent_runs_for_one_slot_make_one_image(
    make_job: MakeJob, image_api: OpenAIStandIn, slack_api: SlackStandIn, sessions
) -> None:
    image_api.latency = 0.2  # both runs are in flight together
    replica_a, replica_b = await make_job(), await make_job()
    rows = await asyncio.gather(replica_a.run_slot(SLOT), replica_b.run_slot(SLOT), replica_a.run_slot(SLOT))
    assert len(image_api.image_requests) == 1
    assert len(slack_api.uploads) == 1
    stored = await all_rows(sessions)
    assert len(stored) == 1 and stored[0].status == "succeeded"
    assert {row.slot_key for row in rows} == {KEY}


async def test_a_restart_never_runs_a_claimed_slot_again(make_job: MakeJob, image_api, sessions) -> None:
    await (await make_job()).run_slot(SLOT)
    again = await (await make_job()).run_slot(SLOT)  # a new process, same slot
    assert again.status == "succeeded"
    assert len(image_api.image_requests) == 1


# ----- missed slots (misfires) and the scheduler


async def test_back_within_grace_posts_once(make_job: MakeJob, image_api: OpenAIStandIn, clock, sessions) -> None:
    clock.now = SLOT + dt.timedelta(hours=2)  # Lukas was down at 10:00 and starts at 12:00
    job = await make_job()
    row = await job.catch_up()
    assert row is not None and row.slot_key == KEY and row.status == "succeeded"
    assert await job.catch_up() is None  # a second restart does nothing
    assert await (await make_job()).catch_up() is None  # nor does another replica
    assert len(image_api.image_requests) == 1


async def test_back_after_grace_posts_nothing(make_job: MakeJob, image_api: OpenAIStandIn, clock, sessions) -> None:
    clock.now = SLOT + dt.timedelta(hours=6, minutes=1)
    assert await (await make_job()).catch_up() is None
    assert image_api.image_requests == []
    assert await all_rows(sessions) == []


async def test_down_for_weeks_posts_once_for_the_newest_slot(
    make_job: MakeJob, image_api: OpenAIStandIn, clock, sessions
) -> None:
    daily = {"images": {"schedule": {"cron": "0 10 * * *", "timezone": "UTC", "grace_minutes": 4320}}}
    clock.now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)  # three daily slots missed, all within grace
    row = await (await make_job(overrides=daily)).catch_up()
    assert row.slot_key == "weekly:2026-11-23T10:00Z"
    assert len(image_api.image_requests) == 1


async def test_catch_up_marks_interrupted_runs_failed(make_job: MakeJob, clock, sessions, image_api) -> None:
    async with sessions() as session:
        early = SLOT - dt.timedelta(days=3)
        session.add(GeneratedImage(slot_key="weekly:crashed", status="pending", created_at=early, updated_at=early))
        await session.commit()
    clock.now = SLOT + dt.timedelta(hours=12)
    assert await (await make_job()).catch_up() is None
    [crashed] = await all_rows(sessions)
    assert crashed.status == "failed" and crashed.error.startswith("interrupted")


async def test_disabled_images_do_nothing_on_schedule(make_job: MakeJob, image_api, clock) -> None:
    job = await make_job(overrides={"images": {"enabled": False}})
    assert await job.run_due() is None
    clock.now = SLOT + dt.timedelta(minutes=5)
    assert await job.catch_up() is None
    assert image_api.image_requests == []
    assert (await job.run_now()).status == "succeeded"  # an admin's explicit request still works


async def test_scheduler_fires_the_slot_and_follows_config_changes(
    make_job: MakeJob, image_api: OpenAIStandIn, clock: FakeClock, sessions, tmp_path: Path
) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.config.loader import parse_config
    from bot.images import schedule

    live = live_config(tmp_path)
    job = await make_job(config=live)
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    try:
        installed = schedule.install(scheduler, job, live, catch_up=False)
        assert installed.coalesce is True
        assert installed.misfire_grace_time == 360 * 60
        assert str(installed.trigger.timezone) == "Europe/Berlin"
        assert installed.next_run_time.weekday() == 0 and installed.next_run_time.hour == 10
        retry = scheduler.get_job(schedule.RETRY_JOB_ID)  # kept pictures (weekly and on request), every hour
        assert retry.func == job.retry_uploads and retry.trigger.interval == dt.timedelta(hours=1)

        clock.now = SLOT + dt.timedelta(seconds=2)  # pretend it is the slot, and let the scheduler fire now
        installed.modify(next_run_time=dt.datetime.now(dt.UTC))
        for _ in range(100):
            rows = await all_rows(sessions)
            if rows and rows[0].status != "pending":
                break
            await asyncio.sleep(0.05)
        assert [(r.slot_key, r.status) for r in rows] == [(KEY, "succeeded")]

        moved_schedule = {"cron": "30 8 * * fri", "timezone": "Europe/Berlin", "grace_minutes": 30}
        live.apply(parse_config(yaml.safe_dump(config_dict({"images": {"schedule": moved_schedule}})), env={}))
        moved = scheduler.get_job(schedule.JOB_ID)
        assert moved.misfire_grace_time == 30 * 60
        assert moved.next_run_time.weekday() == 4
        assert (moved.next_run_time.hour, moved.next_run_time.minute) == (8, 30)

        disabled = {"images": {"enabled": False, "schedule": moved_schedule}}
        live.apply(parse_config(yaml.safe_dump(config_dict(disabled)), env={}))
        assert scheduler.get_job(schedule.JOB_ID).next_run_time is None  # paused
        assert scheduler.get_job(schedule.RETRY_JOB_ID).next_run_time is not None  # kept pictures are paid for
    finally:
        scheduler.shutdown(wait=False)
    assert len(image_api.image_requests) == 1


async def test_catch_up_is_installed_to_run_at_startup(make_job: MakeJob, image_api, clock, sessions, tmp_path) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.images import schedule

    live = live_config(tmp_path)
    clock.now = SLOT + dt.timedelta(hours=1)
    job = await make_job(config=live)
    scheduler = AsyncIOScheduler(timezone="UTC")
    schedule.install(scheduler, job, live)  # before start, as `lukas run` may do
    scheduler.start()
    try:
        for _ in range(100):
            rows = await all_rows(sessions)
            if rows and rows[0].status != "pending":
                break
            await asyncio.sleep(0.05)
    finally:
        scheduler.shutdown(wait=False)
    assert [(r.slot_key, r.status) for r in rows] == [(KEY, "succeeded")]


def test_tiny_png_is_what_the_standin_serves() -> None:
    assert base64.b64decode(base64.b64encode(TINY_PNG)) == TINY_PNG
