"""The weekly picture end to end on the loopback stand-ins and real databases: API errors, budget, config and
prompt checks, each recorded with status, attempts and a reason."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import GeneratedImage
from tests.helpers import free_port
from tests.images.conftest import (
    ADMIN,
    SLOT,
    AlertRecorder,
    MakeJob,
    SleepRecorder,
    all_rows,
    live_config,
)
from tests.standins.openai_api import TINY_PNG, LLMFault, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

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
    from bot.contracts.live import ContractsHolder

    overrides = {
        "contracts": {"banned_terms": ["kraken"]},
        "images": {"milestones": [{"name": "launch", "date": "2026-11-23", "modifier": "riding a friendly Kraken"}]},
    }
    live = live_config(tmp_path, overrides)
    row = await (await make_job(config=live, contracts=ContractsHolder(live))).run_slot(SLOT)
    assert row.status == "rejected"
    assert "banned" in row.error.lower()
    assert "kraken" not in row.error.lower()  # reasons never repeat the banned term
    assert row.occasion == "milestone: launch"
    assert image_api.image_requests == []
    assert row.attempts == 0


async def test_a_clean_prompt_passes_the_real_contract_engine(make_job: MakeJob, image_api, tmp_path: Path) -> None:
    from bot.contracts.live import ContractsHolder

    live = live_config(tmp_path, {"contracts": {"banned_terms": ["kraken"]}})
    row = await (await make_job(config=live, contracts=ContractsHolder(live))).run_slot(SLOT)
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
