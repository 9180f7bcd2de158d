"""The weekly picture end to end against loopback stand-ins for the image API and Slack, on real databases."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.images.slots_logic import slot_key
from bot.store.models import GeneratedImage
from tests.helpers import free_port
from tests.images.conftest import (
    ADMIN,
    CHANNEL,
    SLOT,
    AlertRecorder,
    FakeClock,
    MakeJob,
    SleepRecorder,
    all_rows,
    config_dict,
    live_config,
)
from tests.standins.openai_api import TINY_PNG, LLMFault, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

KEY = slot_key(SLOT)


def completions(slack: SlackStandIn) -> list[dict[str, Any]]:
    return [call.params for call in slack.calls_to("files.completeUploadExternal")]


def completed_channels(slack: SlackStandIn) -> list[str]:
    return [params.get("channel_id") for params in completions(slack)]


def kept_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "data" / "images"
    return sorted(folder.glob("*")) if folder.exists() else []


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
        assert candidate.slack_permalink == "https://slack.example/files/F000001"
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


# ----- error paths: status, attempts, reason


RATE = LLMFault(status=429, code="rate_limit_exceeded", message="Rate limit reached", retry_after=0.25)


@pytest.mark.parametrize(
    ("faults", "status", "attempts", "in_error", "alert_kind"),
    [
        ([RATE], "succeeded", 2, None, None),
        ([RATE, RATE], "failed", 2, "rate limited", None),
        ([LLMFault(status=500)], "succeeded", 2, None, None),
        ([LLMFault(status=502), LLMFault(status=503)], "failed", 2, "HTTP 503", None),
        (
            [LLMFault(status=400, code="content_policy_violation", message="rejected by our safety system")],
            "failed", 1, "content_policy_violation", None,
        ),
        ([LLMFault(status=400, code="moderation_blocked", message="blocked")], "failed", 1, "moderation_blocked", None),
        ([LLMFault(status=401, code="invalid_api_key", message="bad key")], "failed", 1, "OPENAI_API_KEY",
         "image_auth"),
        ([LLMFault(status=403, message="no access")], "failed", 1, "credentials", "image_auth"),
        ([LLMFault(status=429, code="insufficient_quota", message="out of credit")], "failed", 1, "out of credit",
         "image_quota"),
        ([LLMFault(status=404, code="model_not_found", message="The model does not exist")], "failed", 1,
         "does not offer this model", "image_model"),
        ([LLMFault(status=400, code="invalid_value", message="Invalid size '999x999'")], "failed", 1, "Invalid size",
         "image_bad_request"),
        ([LLMFault(status=429, retry_after=3600)], "failed", 1, "longer than retry.images.max_retry_after_seconds",
         None),
        ([LLMFault(status=200, body="<html>upstream garbage</html>")], "failed", 1, "not JSON", None),
        ([LLMFault(status=200, body=json.dumps({"created": 1, "data": []}))], "failed", 1, "without an image", None),
    ],
)  # fmt: skip
async def test_error_paths(
    make_job: MakeJob,
    image_api: OpenAIStandIn,
    slack_api: SlackStandIn,
    sleeps: SleepRecorder,
    alerts: AlertRecorder,
    sessions,
    faults: list[LLMFault],
    status: str,
    attempts: int,
    in_error: str | None,
    alert_kind: str | None,
) -> None:
    image_api.image_faults = list(faults)
    row = await (await make_job()).run_slot(SLOT)
    [stored] = await all_rows(sessions)
    assert stored.status == row.status == status, stored.error
    assert stored.attempts == attempts
    assert len(image_api.image_requests) == attempts
    if in_error is None:
        assert stored.error is None
    else:
        assert in_error in stored.error
        assert stored.cost_usd == 0.0  # a refused or failed request is not billed
        assert slack_api.uploads == {}
    if faults[0].retry_after is not None and attempts == 2:
        assert sleeps.waits == [faults[0].retry_after]  # Retry-After honoured
    assert (alerts.kinds() == [alert_kind]) if alert_kind else alerts.alerts == []


async def test_server_errors_back_off_exponentially_per_seed(
    make_job: MakeJob, image_api: OpenAIStandIn, sleeps: SleepRecorder
) -> None:
    image_api.image_faults = [LLMFault(status=500), LLMFault(status=500)]
    seed_policy = {"attempts": 2, "wait_min_seconds": 4, "wait_max_seconds": 60, "multiplier": 2, "jitter_seconds": 0}
    row = await (await make_job(overrides={"retry": {"images": seed_policy}})).run_slot(SLOT)
    assert (row.status, row.attempts) == ("failed", 2)
    assert sleeps.waits == [4.0]  # waited (recorded, not slept) 4 s before the second and last attempt
    assert "gave up after 2 attempt(s)" in row.error


async def test_sdk_retries_are_off(make_job: MakeJob, image_api: OpenAIStandIn) -> None:
    image_api.image_faults = [LLMFault(status=500), LLMFault(status=500), LLMFault(status=500)]
    one_attempt = {"retry": {"images": {"attempts": 1}}}
    row = await (await make_job(overrides=one_attempt)).run_slot(SLOT)
    assert (row.status, row.attempts) == ("failed", 1)
    assert len(image_api.image_requests) == 1  # the openai SDK did not retry behind tenacity's back


async def test_timeouts_are_retried_then_fail(make_job: MakeJob, image_api: OpenAIStandIn, sessions) -> None:
    image_api.image_faults = [LLMFault(hang=1.0), LLMFault(hang=1.0)]
    row = await (await make_job(overrides={"images": {"request_timeout_seconds": 0.2}})).run_slot(SLOT)
    assert (row.status, row.attempts) == ("failed", 2)
    assert "did not answer in time" in row.error


async def test_unreachable_image_api(make_job: MakeJob, slack_api: SlackStandIn, sessions) -> None:
    job = await make_job(base_url=f"http://127.0.0.1:{free_port()}/v1")
    row = await job.run_slot(SLOT)
    assert (row.status, row.attempts) == ("failed", 2)
    assert "cannot reach the image API" in row.error
    assert slack_api.uploads == {}


@pytest.mark.parametrize(
    ("mode", "data", "content_type", "overrides", "in_error"),
    [
        ("b64", b"<html>not a picture</html>", "image/png", {}, "not a PNG, JPEG, GIF or WebP image"),
        ("url", TINY_PNG, "text/html", {}, "sent text/html, not an image"),
        ("url", b"<html>oops</html>", "image/png", {}, "not a PNG, JPEG, GIF or WebP image"),
        ("url", TINY_PNG * 100, "image/png", {"images": {"download_max_bytes": 1000}}, "download_max_bytes"),
    ],
)
async def test_garbage_and_oversized_images_fail_cleanly(
    make_job: MakeJob,
    image_api: OpenAIStandIn,
    slack_api: SlackStandIn,
    sessions,
    mode: str,
    data: bytes,
    content_type: str,
    overrides: dict[str, Any],
    in_error: str,
) -> None:
    image_api.image_mode, image_api.image_bytes, image_api.image_content_type = mode, data, content_type
    row = await (await make_job(overrides=overrides)).run_slot(SLOT)
    assert row.status == "failed"
    assert in_error in row.error
    assert "paid for" in row.error
    assert row.cost_usd == pytest.approx(0.042)  # generated, so billed: counted against the budget
    assert row.attempts == 1
    assert slack_api.uploads == {}


# ----- budget, price table, config problems


async def _spend(sessions: async_sessionmaker[AsyncSession], *, at: dt.datetime, usd: float, key: str) -> None:
    async with sessions() as session:
        session.add(GeneratedImage(slot_key=key, status="succeeded", cost_usd=usd, created_at=at, updated_at=at))
        await session.commit()


async def test_budget_reached_skips_without_calling_the_api(
    make_job: MakeJob, image_api: OpenAIStandIn, slack_api: SlackStandIn, sessions
) -> None:
    await _spend(sessions, at=SLOT - dt.timedelta(days=10), usd=4.97, key="weekly:earlier")
    row = await (await make_job()).run_slot(SLOT)
    assert row.status == "skipped"
    assert row.error.startswith("budget: $4.970 spent this month + $0.042")
    assert row.cost_usd == 0.0
    assert image_api.image_requests == []
    assert slack_api.uploads == {}


async def test_budget_counts_only_this_month_in_the_config_time_zone(
    make_job: MakeJob, image_api: OpenAIStandIn, sessions
) -> None:
    # 31 October 23:30 UTC is November in Berlin: it counts. 31 October 22:30 UTC is October: it does not.
    await _spend(sessions, at=dt.datetime(2026, 10, 31, 22, 30, tzinfo=dt.UTC), usd=100.0, key="weekly:october")
    await _spend(sessions, at=dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC), usd=4.958, key="weekly:november")
    row = await (await make_job()).run_slot(SLOT)
    assert row.status == "succeeded"  # 4.958 + 0.042 = 5.00: exactly the budget is allowed
    assert len(image_api.image_requests) == 1


async def test_a_model_missing_from_the_price_table_fails_before_buying(
    make_job: MakeJob, image_api: OpenAIStandIn, alerts: AlertRecorder
) -> None:
    row = await (await make_job(overrides={"images": {"model": "gpt-image-9"}})).run_slot(SLOT)
    assert row.status == "failed"
    assert "no price for gpt-image-9 1024x1024 medium" in row.error
    assert "no entry for model 'gpt-image-9'" in row.error
    assert image_api.image_requests == []
    assert alerts.kinds() == ["image_config"]


async def test_no_channels_skips(make_job: MakeJob, image_api: OpenAIStandIn) -> None:
    row = await (await make_job(overrides={"images": {"channels": []}})).run_slot(SLOT)
    assert (row.status, image_api.image_requests) == ("skipped", [])
    assert "images.channels" in row.error


async def test_database_down_means_no_run_and_no_crash(
    make_job: MakeJob, image_api: OpenAIStandIn, tmp_path: Path
) -> None:
    from bot.store.db import create_engine, session_factory

    empty = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-tables.db'}")
    try:
        row = await (await make_job(sessions=session_factory(empty))).run_slot(SLOT)
    finally:
        await empty.dispose()
    assert row.status == "failed" and row.error.startswith("database unavailable")
    assert image_api.image_requests == []


# ----- contracts


class FakeOutcome:
    def __init__(self, ok: bool, value: str, reasons: list[str], contract: str | None = None) -> None:
        self.ok, self.value, self.reasons, self.contract = ok, value, reasons, contract
        self.verdict = "pass" if ok else "violation"


async def test_banned_prompt_is_rejected_by_the_real_contract_engine(
    make_job: MakeJob, image_api: OpenAIStandIn, sessions, tmp_path: Path
) -> None:
    from bot.images.factory import contracts_provider

    overrides = {
        "contracts": {"banned_terms": ["kraken"]},
        "images": {"milestones": [{"name": "launch", "date": "2026-11-23", "modifier": "riding a friendly Kraken"}]},
    }
    live = live_config(tmp_path, overrides)
    row = await (await make_job(config=live, contracts=contracts_provider(live))).run_slot(SLOT)
    assert row.status == "rejected"
    assert "banned" in row.error.lower()
    assert "kraken" not in row.error.lower()  # reasons never repeat the banned term
    assert row.occasion == "milestone: launch"
    assert image_api.image_requests == []
    assert row.attempts == 0


async def test_a_clean_prompt_passes_the_real_contract_engine(make_job: MakeJob, image_api, tmp_path: Path) -> None:
    from bot.images.factory import contracts_provider

    live = live_config(tmp_path, {"contracts": {"banned_terms": ["kraken"]}})
    row = await (await make_job(config=live, contracts=contracts_provider(live))).run_slot(SLOT)
    assert row.status == "succeeded"


async def test_a_fixed_prompt_is_what_gets_sent(make_job: MakeJob, image_api: OpenAIStandIn) -> None:
    class Engine:
        def check_image_prompt(self, prompt: str) -> FakeOutcome:
            return FakeOutcome(True, prompt.replace("teddy bear", "plush bear"), ["wording adjusted"])

    row = await (await make_job(contracts=lambda: Engine())).run_slot(SLOT)
    assert row.status == "succeeded"
    assert "plush bear" in image_api.image_requests[0].body["prompt"]
    assert "plush bear" in row.prompt


async def test_crashing_checks_fail_closed(make_job: MakeJob, image_api: OpenAIStandIn) -> None:
    class Engine:
        def check_image_prompt(self, prompt: str) -> FakeOutcome:
            raise RuntimeError("boom")

    row = await (await make_job(contracts=lambda: Engine())).run_slot(SLOT)
    assert row.status == "failed" and "prompt checks crashed" in row.error
    assert image_api.image_requests == []


async def test_without_an_engine_the_basic_check_still_applies(make_job: MakeJob, image_api: OpenAIStandIn) -> None:
    overrides = {
        "contracts": {"banned_terms": ["kraken"]},
        "images": {"milestones": [{"name": "launch", "date": "2026-11-23", "modifier": "riding a kraken"}]},
    }
    row = await (await make_job(overrides=overrides, contracts=None)).run_slot(SLOT)
    assert row.status == "rejected"
    assert image_api.image_requests == []


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
    [kept] = kept_files(tmp_path)
    assert kept.read_bytes() == TINY_PNG
    assert row.local_path == str(kept.resolve())
    assert alerts.kinds() == ["image_upload"]

    del slack_api.channel_errors[CHANNEL]  # an admin invites Lukas
    assert await job.retry_uploads() == 1
    [stored] = await all_rows(sessions)
    assert stored.status == "succeeded" and stored.upload_state == "done" and stored.error is None
    assert stored.slack_file_id and stored.slack_permalink and stored.channel_id == CHANNEL
    assert list(slack_api.uploads.values())[-1] == TINY_PNG
    assert kept_files(tmp_path) == []
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


async def test_a_lost_kept_file_is_reported(make_job: MakeJob, slack_api: SlackStandIn, sessions) -> None:
    slack_api.channel_errors[CHANNEL] = "not_in_channel"
    job = await make_job()
    row = await job.run_slot(SLOT)
    Path(row.local_path).unlink()
    slack_api.channel_errors.clear()
    assert await job.retry_uploads() == 0
    [stored] = await all_rows(sessions)
    assert stored.upload_state == "lost" and "missing" in stored.error


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


async def test_admins_are_alerted_through_slack(
    make_job: MakeJob, image_api: OpenAIStandIn, slack_api: SlackStandIn, tmp_path: Path
) -> None:
    from bot.slack.alerts import AdminAlerter
    from bot.slack.client import build_web_client

    live = live_config(tmp_path)
    alerter = AdminAlerter(client=build_web_client(token="xoxb-test", api_url=slack_api.api_url), config=live)
    image_api.image_faults = [LLMFault(status=401, code="invalid_api_key", message="Incorrect API key provided")]
    row = await (await make_job(config=live, alert_admins=alerter.alert)).run_slot(SLOT)
    assert row.status == "failed"
    assert [c.params["users"] for c in slack_api.calls_to("conversations.open")] == [ADMIN]
    [dm] = slack_api.posted_texts()
    assert "weekly bear picture failed" in dm and "OPENAI_API_KEY" in dm


def test_tiny_png_is_what_the_standin_serves() -> None:
    assert base64.b64decode(base64.b64encode(TINY_PNG)) == TINY_PNG
