"""Two picture runs at once against a tight budget: the reservation is atomic, so only one buys (SQLite and
PostgreSQL); a failed, unpaid run gives its reservation back."""

from __future__ import annotations

import asyncio
import datetime as dt

from bot.images import budget_repo
from tests.images.conftest import SLOT, MakeJob, all_rows
from tests.standins.openai_api import LLMFault, OpenAIStandIn

TIGHT = {"images": {"monthly_budget_usd": 0.05}}  # room for one $0.042 picture, not two


async def test_concurrent_runs_never_exceed_the_budget(make_job: MakeJob, image_api: OpenAIStandIn, sessions) -> None:
    image_api.latency = 0.5  # both runs are past their budget check while the first picture is being made
    jobs = [await make_job(overrides=TIGHT) for _ in range(4)]  # four replicas or admins, on four November slots
    slots = [SLOT - dt.timedelta(days=7 * week) for week in range(4)]
    rows = await asyncio.gather(*(job.run_slot(slot) for job, slot in zip(jobs, slots, strict=True)))
    assert len(image_api.image_requests) == 1
    assert sorted(row.status for row in rows) == ["skipped", "skipped", "skipped", "succeeded"]
    stored = await all_rows(sessions)
    assert sum(row.cost_usd for row in stored) <= 0.05
    assert all("monthly_budget_usd" in (row.error or "") for row in stored if row.status == "skipped")


async def test_a_failed_unpaid_run_gives_its_reservation_back(
    make_job: MakeJob, image_api: OpenAIStandIn, sessions
) -> None:
    image_api.image_faults.append(LLMFault(status=400, code="content_policy_violation"))
    failed = await (await make_job(overrides=TIGHT)).run_slot(SLOT)
    assert failed.status == "failed"
    assert await budget_repo.reserved(sessions, month="2026-11") == 0.0
    later = await (await make_job(overrides=TIGHT)).run_now()
    assert later.status == "succeeded"  # the budget was not eaten by the failure
    assert len(image_api.image_requests) == 2
