"""Daylight saving: a cron time in the repeated (fall-back) or skipped (spring-forward) local hour runs once."""

from __future__ import annotations

import datetime as dt

from bot.config.images_schema import ScheduleConfig
from bot.images.slots_logic import slots_between
from tests.images.conftest import FakeClock, MakeJob
from tests.standins.openai_api import OpenAIStandIn

NIGHTLY = ScheduleConfig(cron="30 2 * * *", timezone="Europe/Berlin")


def test_the_repeated_fall_back_hour_is_one_slot_and_the_search_ends() -> None:
    # 25 October 2026: 02:30 happens twice in Berlin (00:30 and 01:30 UTC).
    slots = slots_between(
        schedule=NIGHTLY,
        start=dt.datetime(2026, 10, 24, 12, tzinfo=dt.UTC),
        end=dt.datetime(2026, 10, 27, 12, tzinfo=dt.UTC),
    )
    utc = [s.astimezone(dt.UTC).strftime("%m-%d %H:%M") for s in slots]
    assert utc == ["10-25 00:30", "10-26 01:30", "10-27 01:30"]


def test_the_skipped_spring_forward_hour_is_one_slot() -> None:
    # 29 March 2026: 02:30 never happens in Berlin; the trigger's shifted time is the day's one slot.
    slots = slots_between(
        schedule=NIGHTLY,
        start=dt.datetime(2026, 3, 28, 12, tzinfo=dt.UTC),
        end=dt.datetime(2026, 3, 30, 12, tzinfo=dt.UTC),
    )
    assert [s.date().isoformat() for s in slots] == ["2026-03-29", "2026-03-30"]


async def test_the_scheduler_firing_twice_in_the_fall_back_hour_makes_one_picture(
    make_job: MakeJob, image_api: OpenAIStandIn, clock: FakeClock
) -> None:
    overrides = {"images": {"schedule": {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}}}
    job = await make_job(overrides=overrides)
    clock.now = dt.datetime(2026, 10, 25, 0, 30, 5, tzinfo=dt.UTC)  # 02:30 CEST
    first = await job.run_due()
    clock.now = dt.datetime(2026, 10, 25, 1, 30, 5, tzinfo=dt.UTC)  # 02:30 CET, the same wall-clock time again
    second = await job.run_due()
    assert first is not None and first.status == "succeeded"
    assert second is not None and second.slot_key == first.slot_key
    assert len(image_api.image_requests) == 1
