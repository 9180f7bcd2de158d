"""A picture idea is a person's words: erased with `/lukas forget`, `lukas forget --user`, retention and a deletion
in Slack (the row stays, for the ledger), and never written to a log line."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from bot.store.db import create_engine
from bot.store.models import GeneratedImage
from tests.fidelity.test_edits_and_deletions import deleted
from tests.harness import Harness, mention_event, running_lukas
from tests.helpers import clean_env, run_lukas
from tests.standins.openai_api import LLMFault

CHANNEL = "C0LABOPS"
PICTURES = {"admins": ["U0ADMIN"], "pictures": {"daily_quota_per_person": 5}, "images": {"monthly_budget_usd": 5.0}}
IDEA = "me at my divorce hearing with Bob"
WORDS = ("divorce", "hearing", "bob")  # none of them is in Lukas's own prompt, captions or lines


async def _draw(h: Harness, idea: str = IDEA, *, user: str = "U0ANNA") -> dict[str, object]:
    event = mention_event(text=f"draw {idea}", channel=CHANNEL, user=user)
    uploads = len(h.slack.calls_to("files.completeUploadExternal"))
    await h.send(event)
    await h.wait_until(lambda: len(h.slack.calls_to("files.completeUploadExternal")) == uploads + 1)
    await h.lukas.pictures.drain(10)
    return event


async def _rows(h: Harness) -> dict[str, GeneratedImage]:
    return {row.slot_key: row for row in await h.rows(GeneratedImage)}


def _holds_words(row: GeneratedImage) -> bool:
    text = f"{row.prompt} {row.revised_prompt or ''} {row.error or ''} {row.slot_key}".lower()
    return any(word in text for word in WORDS)


def _erased_and_kept(row: GeneratedImage) -> bool:
    """The idea gone, the ledger (status, cost, file) still there."""
    return (
        (row.prompt, row.revised_prompt) == ("", None)
        and row.erased_at is not None
        and row.status == "succeeded"
        and row.cost_usd == pytest.approx(0.042)
        and bool(row.slack_file_id)
    )


async def test_forget_erases_the_ideas_of_the_persons_pictures_and_keeps_the_ledger(
    tmp_path: Path, database_url: str
) -> None:
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        await _draw(h)
        await _draw(h, "yourself with a kite", user="U0BEN")
        anna, ben = sorted(await h.rows(GeneratedImage), key=lambda r: r.requested_by or "")
        assert _holds_words(anna) and "divorce" in (anna.revised_prompt or "")  # what there is to erase

        await h.command("forget", user="U0ANNA", key="ask")
        await h.wait_until(lambda: bool(h.slack.responses("ask")))
        assert "1 message(s)" in h.slack.responses("ask")[0]["text"]
        await h.command("forget confirm", user="U0ANNA", key="confirm")
        await h.wait_until(lambda: bool(h.slack.responses("confirm")))
        assert "erased the text of 1 message(s)" in h.slack.responses("confirm")[0]["text"]

        rows = await _rows(h)
        assert _erased_and_kept(rows[anna.slot_key]) and not _holds_words(rows[anna.slot_key])
        assert rows[ben.slot_key].prompt == ben.prompt and "kite" in (rows[ben.slot_key].revised_prompt or "")


async def test_retention_erases_old_picture_ideas_but_weekly_prompts_stay(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        await _draw(h)
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=91)
        async with h.lukas.services.engine.begin() as connection:
            await connection.execute(update(GeneratedImage).values(created_at=old))
            await connection.execute(
                insert(GeneratedImage).values(
                    slot_key="2026-11-16T09:00Z", prompt="Lukas in autumn leaves", status="succeeded", created_at=old
                )
            )
        await _draw(h, "me and Bob at my divorce party")  # fresh: kept

        assert await h.lukas.retention_once() == 1
        rows = sorted(await h.rows(GeneratedImage), key=lambda r: r.id)
        expired, weekly, fresh = rows
        assert _erased_and_kept(expired) and not _holds_words(expired)
        assert (weekly.prompt, weekly.erased_at) == ("Lukas in autumn leaves", None)  # no one's words in it
        assert "divorce party" in fresh.prompt and fresh.erased_at is None
        assert await h.lukas.retention_once() == 0


async def test_deleting_the_asking_message_erases_the_idea(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        event = await _draw(h)
        status, _ = await h.send(deleted(channel=CHANNEL, ts=str(event["ts"])))
        assert status == 200
        await h.settle()
        (row,) = await h.rows(GeneratedImage)
        assert _erased_and_kept(row) and not _holds_words(row)
        assert h.slack.posted_texts() == [] and h.llm.chat_requests == []  # a deletion is never answered


async def test_a_request_deleted_while_it_is_drawn_keeps_no_revised_prompt(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        h.llm.image_latency = 1.0
        event = mention_event(text=f"draw {IDEA}", channel=CHANNEL)
        await h.send(event)
        await h.wait_until(lambda: len(h.llm.image_requests) == 1)  # the image API is drawing it now
        await h.send(deleted(channel=CHANNEL, ts=event["ts"]))
        await h.wait_until(lambda: len(h.slack.calls_to("files.completeUploadExternal")) == 1)
        await h.lukas.pictures.drain(10)
        (row,) = await h.rows(GeneratedImage)
        assert _erased_and_kept(row) and not _holds_words(row)  # the API's revised prompt was not written back


async def test_a_request_deleted_before_it_arrives_is_never_drawn(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=PICTURES) as h:
        event = mention_event(text=f"draw {IDEA}", channel=CHANNEL)
        await h.send(deleted(channel=CHANNEL, ts=event["ts"]))
        await h.send(event, event_id="EvLATE")
        await h.send(event, event_id="EvLATE", retry_num=1)
        await h.lukas.pictures.drain(10)
        await h.settle()
        assert h.llm.image_requests == [] and h.slack.calls_to("files.completeUploadExternal") == []
        assert h.slack.posted_texts() == []  # not even a line: the person took the request back
        (row,) = await h.rows(GeneratedImage)
        assert (row.status, row.cost_usd, row.erased_at is not None) == ("skipped", 0.0, True)
        assert not _holds_words(row)


async def test_no_picture_idea_reaches_a_log_line(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    overrides = {**PICTURES, "contracts": {"banned_terms": ["spreadsheet"]}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        await _draw(h)  # made and posted
        await h.send(mention_event(text="draw me at my divorce hearing with a spreadsheet", channel=CHANNEL))
        await h.wait_until(lambda: len(h.slack.posted_texts(CHANNEL)) == 1)  # refused by the prompt checks
        # An image API that quotes the prompt back in its error (some compatible servers do)
        h.llm.image_faults.append(
            LLMFault(400, code="content_policy_violation", message="rejected: me at my divorce hearing with Carol")
        )
        await h.send(mention_event(text="draw me at my divorce hearing with Carol", channel=CHANNEL))
        await h.wait_until(lambda: len(h.slack.posted_texts(CHANNEL)) == 2)
        await h.lukas.pictures.drain(10)
        await h.settle()

        statuses = sorted(row.status for row in await h.rows(GeneratedImage))
        assert statuses == ["failed", "rejected", "succeeded"]  # all three paths ran
        failed = next(row for row in await h.rows(GeneratedImage) if row.status == "failed")
        assert failed.error and "content_policy_violation" in failed.error and "divorce" not in failed.error
        lines = [r.getMessage().lower() for r in caplog.records if r.name.startswith("bot")]
        assert any("picture request request:" in line for line in lines)  # the flow did log
        leaked = [line for line in lines if any(word in line for word in WORDS)]
        assert leaked == []


async def _seed_pictures(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for key, user, prompt in (
                ("request:C1:1800000000.000001", "U0ANNA", f"Lukas, {IDEA}"),
                ("request:C1:1800000000.000002", "U0BEN", "Lukas, with a kite"),
                ("2026-11-16T09:00Z", None, "Lukas in autumn leaves"),
            ):
                await connection.execute(
                    insert(GeneratedImage).values(
                        slot_key=key,
                        requested_by=user,
                        prompt=prompt,
                        revised_prompt=f"revised: {prompt}",
                        status="succeeded",
                        cost_usd=0.042,
                    )
                )
    finally:
        await engine.dispose()


async def test_lukas_forget_user_erases_the_persons_picture_ideas(migrated_db: str) -> None:
    await _seed_pictures(migrated_db)
    env = clean_env(DATABASE_URL=migrated_db)
    done = await asyncio.to_thread(run_lukas, "forget", "--user", "U0ANNA", env=env)
    assert done.returncode == 0, done.stderr
    assert "erased the text of 1 message(s)" in done.stdout
    engine = create_engine(migrated_db)
    try:
        async with engine.connect() as connection:
            rows = {
                r.requested_by: r
                for r in await connection.execute(
                    select(
                        GeneratedImage.requested_by,
                        GeneratedImage.prompt,
                        GeneratedImage.revised_prompt,
                        GeneratedImage.cost_usd,
                        GeneratedImage.erased_at,
                    )
                )
            }
    finally:
        await engine.dispose()
    assert (rows["U0ANNA"].prompt, rows["U0ANNA"].revised_prompt, rows["U0ANNA"].cost_usd) == ("", None, 0.042)
    assert rows["U0ANNA"].erased_at is not None
    assert rows["U0BEN"].prompt == "Lukas, with a kite" and rows[None].prompt == "Lukas in autumn leaves"
