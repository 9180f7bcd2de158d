"""Pictures on request and the App Home tab end to end (issue 16)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.store.models import GeneratedImage
from tests.harness import envelope, mention_event, message_event, running_lukas

CHANNEL, ADMIN = "C0LABOPS", "U0ADMIN"
PICTURES = {"admins": [ADMIN], "pictures": {"daily_quota_per_person": 3}, "images": {"monthly_budget_usd": 5.0}}


async def images(h) -> list[GeneratedImage]:  # type: ignore[no-untyped-def]
    return await h.rows(GeneratedImage)


async def settle_pictures(h) -> None:  # type: ignore[no-untyped-def]
    await h.lukas.pictures.drain(10)
    await h.settle()


async def test_a_picture_request_buys_once_and_posts_in_the_thread(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        event = mention_event(text="draw yourself at the beach", channel=CHANNEL)
        await h.send(event, event_id="EvDRAW1")
        await h.wait_until(lambda: len(h.slack.calls_to("files.completeUploadExternal")) == 1)
        await settle_pictures(h)
        (request,) = h.llm.image_requests
        prompt = request.body["prompt"]
        assert prompt.startswith("A friendly stuffed teddy bear mascot named Lukas, at the beach, whimsical")
        (upload,) = h.slack.calls_to("files.completeUploadExternal")
        assert upload.params["channel_id"] == CHANNEL and upload.params["thread_ts"] == event["ts"]
        assert upload.params["initial_comment"] == "Here you go! Me, at the beach 🐻🎨 I hope you like it!"
        (row,) = await images(h)
        assert (row.status, row.requested_by, row.thread_ts) == ("succeeded", "U0ANNA", event["ts"])
        assert row.cost_usd == pytest.approx(0.042) and row.slack_file_id
        assert h.llm.chat_requests == []  # a picture request is not a chat message

        # Redelivered (same event id), and the `message` event of the same Slack message: nothing more is bought.
        await h.send(event, event_id="EvDRAW1", retry_num=1)
        twin = message_event(text="<@UBOT> draw yourself at the beach", channel=CHANNEL, ts=event["ts"])
        await h.send(twin, event_id="EvDRAW2")
        await settle_pictures(h)
        assert len(h.llm.image_requests) == 1 and len(h.slack.calls_to("files.completeUploadExternal")) == 1
        assert len(await images(h)) == 1 and h.slack.posted_texts() == [] and h.llm.chat_requests == []


async def test_twenty_requests_at_once_keep_the_daily_quota_exactly(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        events = [mention_event(text=f"draw yourself with {i} balloons", channel=CHANNEL) for i in range(20)]
        statuses = await asyncio.gather(*(h.send(event) for event in events))
        assert {status for status, _ack in statuses} == {200}
        await h.wait_until(lambda: len(h.slack.calls_to("files.completeUploadExternal")) == 3, timeout=20)
        await h.wait_until(lambda: len(h.slack.posted_texts(CHANNEL)) == 17, timeout=20)
        await settle_pictures(h)
        assert len(h.llm.image_requests) == 3
        rows = await images(h)
        assert sorted(r.status for r in rows) == ["skipped"] * 17 + ["succeeded"] * 3
        assert all("quota" in (r.error or "") for r in rows if r.status == "skipped")
        assert sum(r.cost_usd for r in rows) == pytest.approx(3 * 0.042)
        assert all("crayons are resting" in text for text in h.slack.posted_texts(CHANNEL))


async def test_over_the_image_budget_lukas_rests_his_crayons(tmp_path: Path, database_url: str) -> None:
    overrides = {**PICTURES, "images": {"monthly_budget_usd": 0.05}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        await h.send(mention_event(text="draw yourself in the snow", channel=CHANNEL))
        await h.wait_until(lambda: len(h.slack.calls_to("files.completeUploadExternal")) == 1)
        await h.send(mention_event(text="draw yourself in the rain", channel=CHANNEL))  # 0.042 + 0.042 > 0.05
        await h.wait_until(lambda: len(h.slack.posted_texts(CHANNEL)) == 1)
        await settle_pictures(h)
        assert len(h.llm.image_requests) == 1
        assert "crayons are resting" in h.slack.posted_texts(CHANNEL)[0]
        first, second = await images(h)
        assert (first.status, second.status, second.cost_usd) == ("succeeded", "skipped", 0.0)
        assert second.error and second.error.startswith("budget:")


async def test_a_refused_idea_gets_an_in_character_no_and_buys_nothing(tmp_path: Path, database_url: str) -> None:
    overrides = {**PICTURES, "contracts": {"banned_terms": ["spreadsheet"]}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        await h.send(mention_event(text="draw yourself holding a spreadsheet", channel=CHANNEL))
        await h.wait_until(lambda: len(h.slack.posted_texts(CHANNEL)) == 1)
        await settle_pictures(h)
        assert h.llm.image_requests == [] and h.slack.calls_to("files.completeUploadExternal") == []
        (row,) = await images(h)
        assert (row.status, row.cost_usd) == ("rejected", 0.0)
        line = h.slack.posted_texts(CHANNEL)[0]
        assert line in h.lukas.config.current.pictures.refusal_lines and "spreadsheet" not in line


async def test_slash_draw_makes_a_picture_in_the_channel(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        status, body = await h.command("draw a rocket", channel=CHANNEL)
        assert status == 200 and body["text"] == h.lukas.config.current.pictures.working_line
        await h.wait_until(lambda: len(h.slack.calls_to("files.completeUploadExternal")) == 1)
        await settle_pictures(h)
        assert "named Lukas, a rocket, whimsical" in h.llm.image_requests[0].body["prompt"]
        assert "thread_ts" not in h.slack.calls_to("files.completeUploadExternal")[0].params


def home_opened(user: str, tab: str = "home") -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab, "event_ts": "1.2"}


async def test_the_home_tab_shows_the_latest_picture_and_admin_status(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        now = dt.datetime.now(dt.UTC)
        async with h.lukas.services.sessions() as session:
            session.add_all([
                GeneratedImage(slot_key="2026-11-16T09:00Z", status="succeeded", theme="autumn", slack_file_id="F0OLD",
                               cost_usd=0.04, created_at=now - dt.timedelta(minutes=2)),
                GeneratedImage(slot_key="2026-11-23T09:00Z", status="succeeded", theme="science", slack_file_id="F0NEW",
                               cost_usd=0.04, created_at=now - dt.timedelta(minutes=1)),
                GeneratedImage(slot_key="request:C1:1.1", status="succeeded", slack_file_id="F0ASKED",
                               requested_by="U0ANNA", cost_usd=0.04, created_at=now),
            ])  # fmt: skip
            await session.commit()
        await h.send(home_opened("U0ANNA"))
        await h.send(home_opened(ADMIN))
        await h.wait_until(lambda: len(h.slack.calls_to("views.publish")) == 2)
        anna, admin = (c.params for c in h.slack.calls_to("views.publish"))
        assert anna["user_id"] == "U0ANNA" and admin["user_id"] == ADMIN
        view = json.loads(anna["view"]) if isinstance(anna["view"], str) else anna["view"]
        images_shown = [b for b in view["blocks"] if b["type"] == "image"]
        assert [b["slack_file"]["id"] for b in images_shown] == ["F0NEW"]
        text = json.dumps(view)
        assert "Bear facts" in text and "draw yourself at the beach" in text and "For admins" not in text
        admin_view = json.loads(admin["view"]) if isinstance(admin["view"], str) else admin["view"]
        admin_text = json.dumps(admin_view, ensure_ascii=False)
        assert "For admins" in admin_text and "openai:gpt-4.1-mini" in admin_text
        assert "$0.12 of $5.00" in admin_text  # this month's pictures against images.monthly_budget_usd


async def test_a_rejected_home_publish_is_logged_and_chat_carries_on(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.slack.home_tab")
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        h.slack.fail("views.publish", "invalid_blocks")
        status, _ = await h.send(home_opened("U0ANNA"))
        assert status == 200
        await h.wait_until(lambda: "views.publish for U0ANNA was rejected (invalid_blocks)" in caplog.text)
        await h.send(message_event(text="still there?", channel="D0ANNA"))
        await h.wait_until(lambda: len(h.slack.posted_texts("D0ANNA")) == 1)
        await h.settle()
        assert len(h.llm.chat_requests) == 1


async def test_the_home_tab_is_refreshed_after_a_weekly_picture(tmp_path: Path, database_url: str) -> None:
    overrides = {**PICTURES, "images": {"channels": [CHANNEL]}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        await h.send(home_opened("U0ANNA"))
        await h.wait_until(lambda: len(h.slack.calls_to("views.publish")) == 1)
        row = await h.lukas.images.run_now()
        assert row.status == "succeeded"
        await h.wait_until(lambda: len(h.slack.calls_to("views.publish")) == 2)
        view = h.slack.calls_to("views.publish")[1].params["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert [b["slack_file"]["id"] for b in view["blocks"] if b["type"] == "image"] == [row.slack_file_id]
        _ = envelope  # the harness's envelope is what h.send wraps events in
