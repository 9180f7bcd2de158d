"""Pure pieces: slots and the catch-up window, cost arithmetic and the budget, retry decisions, image sniffing."""

from __future__ import annotations

import datetime as dt

import httpx2
import openai
import pytest

from bot.config.images_schema import ImagePrice, ImagesConfig, ImageTokenPrice, ScheduleConfig
from bot.config.schema import RetryPolicy
from bot.images.cost_logic import (
    budget_allows,
    budget_reason,
    cost_from_usage,
    image_cost,
    missing_price_reason,
    price_for,
)
from bot.images.media_logic import decode_b64, sniff
from bot.images.retry_logic import classify, exponential_wait, parse_retry_after, wait_before_retry
from bot.images.slots_logic import (
    due_slot,
    latest_slot,
    manual_key,
    month_window,
    next_slot,
    slot_key,
    slots_before,
)
from tests.standins.openai_api import TINY_PNG

UTC = dt.UTC
WEEKLY = ScheduleConfig(cron="0 10 * * mon", timezone="Europe/Berlin", grace_minutes=360)
SLOT = dt.datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin (CET)


# ----- slots


def test_slot_key_is_the_cron_time_in_utc() -> None:
    assert slot_key(SLOT) == "weekly:2026-11-23T09:00Z"
    berlin = SLOT.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert slot_key(berlin) == "weekly:2026-11-23T09:00Z"
    assert manual_key(SLOT + dt.timedelta(seconds=5, microseconds=7)) == "manual:2026-11-23T09:00:05.000007Z"


def test_due_slot_within_grace_only() -> None:
    assert due_slot(schedule=WEEKLY, now=SLOT) == SLOT
    assert due_slot(schedule=WEEKLY, now=SLOT + dt.timedelta(hours=5, minutes=59)) == SLOT
    assert due_slot(schedule=WEEKLY, now=SLOT + dt.timedelta(hours=6, minutes=1)) is None
    assert due_slot(schedule=WEEKLY, now=SLOT - dt.timedelta(minutes=1)) is None


def test_after_many_missed_slots_only_the_newest_counts() -> None:
    daily = ScheduleConfig(cron="0 10 * * *", timezone="UTC", grace_minutes=60 * 24 * 3)
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert due_slot(schedule=daily, now=now) == dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_summer_time_moves_the_utc_slot() -> None:
    summer = dt.datetime(2026, 7, 6, 8, 0, tzinfo=UTC)  # 10:00 CEST
    assert latest_slot(schedule=WEEKLY, now=summer, lookback=dt.timedelta(minutes=1)) == summer
    assert next_slot(schedule=WEEKLY, now=SLOT - dt.timedelta(days=1)) == SLOT


def test_slots_before() -> None:
    earlier = slots_before(schedule=WEEKLY, moment=SLOT, count=3)
    assert [slot_key(s) for s in earlier] == [
        "weekly:2026-11-02T09:00Z",
        "weekly:2026-11-09T09:00Z",
        "weekly:2026-11-16T09:00Z",
    ]


def test_month_window_follows_the_config_time_zone() -> None:
    # 23:30 UTC on 31 October is already November in Berlin
    start, end = month_window(now=dt.datetime(2026, 10, 31, 23, 30, tzinfo=UTC), timezone="Europe/Berlin")
    assert start == dt.datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert end == dt.datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    start, end = month_window(now=dt.datetime(2026, 12, 15, tzinfo=UTC), timezone="UTC")
    assert (start, end) == (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))


# ----- cost and budget


def images(**changes: object) -> ImagesConfig:
    base = ImagesConfig(
        prices=[
            ImagePrice(model="gpt-image-2", size="1024x1024", quality="medium", usd=0.042),
            ImagePrice(model="gpt-image-2", size="1024x1024", quality="high", usd=0.167),
        ]
    )
    return base.model_copy(update=changes)


def test_price_table_lookup() -> None:
    config = images()
    assert price_for(config=config, model="gpt-image-2", size="1024x1024", quality="medium") == 0.042
    assert price_for(config=config, model="gpt-image-2", size="1024x1024", quality="low") is None
    reason = missing_price_reason(config=config, model="gpt-image-2", size="1024x1024", quality="low")
    assert "no price for gpt-image-2 1024x1024 low" in reason and "1024x1024 medium" in reason
    reason = missing_price_reason(config=config, model="gpt-imag-2", size="1024x1024", quality="medium")
    assert "no entry for model 'gpt-imag-2'" in reason


def test_cost_from_usage_arithmetic() -> None:
    price = ImageTokenPrice(text_input=5.0, image_input=10.0, output=40.0)
    usage = {
        "input_tokens": 50,
        "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
        "output_tokens": 4160,
        "total_tokens": 4210,
    }
    # 40*5 + 10*10 + 4160*40 = 200 + 100 + 166400 = 166700 per million
    assert cost_from_usage(price=price, usage=usage) == pytest.approx(0.1667)
    # no breakdown: all input at the text price
    assert cost_from_usage(price=price, usage={"input_tokens": 100, "output_tokens": 1000}) == pytest.approx(0.0405)
    assert cost_from_usage(price=price, usage={"input_tokens": 0, "output_tokens": 0}) is None


def test_image_cost_prefers_usage_then_the_table() -> None:
    config = images(token_prices={"gpt-image-2": ImageTokenPrice(text_input=5.0, output=40.0)})
    usage = {"input_tokens": 100, "output_tokens": 1000}
    by_usage = image_cost(config=config, model="gpt-image-2", size="1024x1024", quality="medium", usage=usage)
    assert (by_usage.usd, by_usage.source) == (0.0405, "usage")
    by_table = image_cost(config=config, model="gpt-image-2", size="1024x1024", quality="medium", usage=None)
    assert (by_table.usd, by_table.source) == (0.042, "price table")
    assert image_cost(config=images(), model="x", size="1024x1024", quality="medium", usage=usage) is None


def test_budget_counts_the_image_about_to_be_bought() -> None:
    assert budget_allows(spent_usd=4.958, price_usd=0.042, budget_usd=5.0)
    assert not budget_allows(spent_usd=4.959, price_usd=0.042, budget_usd=5.0)
    assert not budget_allows(spent_usd=0.0, price_usd=0.042, budget_usd=0.0)
    assert budget_reason(spent_usd=4.99, price_usd=0.042, budget_usd=5).startswith("budget: $4.990 spent")


# ----- retries


def _status_error(status: int, code: str | None = None, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/images/generations")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    body = {"message": "nope", "code": code, "type": "x"}
    cls = {400: openai.BadRequestError, 401: openai.AuthenticationError, 404: openai.NotFoundError,
           429: openai.RateLimitError}.get(status, openai.InternalServerError)  # fmt: skip
    return cls("nope", response=response, body=body)


@pytest.mark.parametrize(
    ("exc", "kind", "retryable", "alert"),
    [
        (_status_error(429), "rate_limit", True, False),
        (_status_error(429, "insufficient_quota"), "quota", False, True),
        (_status_error(500), "server", True, False),
        (_status_error(503), "server", True, False),
        (_status_error(400, "content_policy_violation"), "content_policy", False, False),
        (_status_error(400, "moderation_blocked"), "content_policy", False, False),
        (_status_error(400, "invalid_value"), "bad_request", False, True),
        (_status_error(401), "auth", False, True),
        (_status_error(404, "model_not_found"), "model", False, True),
        (openai.APIConnectionError(request=httpx2.Request("POST", "http://x")), "connection", True, False),
        (openai.APITimeoutError(request=httpx2.Request("POST", "http://x")), "timeout", True, False),
        (ValueError("boom"), "error", False, False),
    ],
)
def test_classify(exc: BaseException, kind: str, retryable: bool, alert: bool) -> None:
    failure = classify(exc)
    assert (failure.kind, failure.retryable, failure.alert) == (kind, retryable, alert)


def test_retry_after_is_read_from_the_headers() -> None:
    assert classify(_status_error(429, headers={"retry-after": "7"})).retry_after == 7.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after(None) is None


def test_seed_wait_is_exponential_from_4_to_60_seconds() -> None:
    policy = RetryPolicy(attempts=5, wait_min_seconds=4, wait_max_seconds=60, multiplier=2, jitter_seconds=0)
    assert [exponential_wait(policy=policy, attempt=n) for n in range(1, 7)] == [4, 4, 8, 16, 32, 60]
    server = classify(_status_error(500))
    assert wait_before_retry(policy=policy, attempt=1, failure=server, jitter=0.5) == 4.5
    limited = classify(_status_error(429, headers={"retry-after": "30"}))
    assert wait_before_retry(policy=policy, attempt=1, failure=limited) == 30.0
    too_long = classify(_status_error(429, headers={"retry-after": "600"}))
    assert wait_before_retry(policy=policy, attempt=1, failure=too_long) is None


# ----- image bytes


def test_sniff_and_decode() -> None:
    assert sniff(TINY_PNG).mime == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0rest").extension == "jpg"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ").extension == "webp"
    assert sniff(b"<html>error</html>") is None
    assert decode_b64("aGVsbG8=\n") == b"hello"
    with pytest.raises(ValueError, match="not valid base64"):
        decode_b64("not base64!")
    with pytest.raises(ValueError, match="empty"):
        decode_b64("")
