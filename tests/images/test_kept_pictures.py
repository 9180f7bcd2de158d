"""Paid pictures Slack did not take wait in the database, so any replica posts them (issue 23, items 1 and 5):
two Lukas with their own data directories over one database, the old on-disk layout, pictures drawn on request,
and `lukas image --retry-uploads`. "Not here" is never recorded as "lost"."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from bot.config.live import LiveConfig
from bot.images import repo
from bot.images.caption_logic import filename_for
from bot.images.client import ImageClient
from bot.images.job import WeeklyImageJob
from bot.images.requests import PictureDesk
from bot.slack.client import build_web_client
from bot.store.db import create_engine, session_factory
from bot.store.models import GeneratedImage
from tests.helpers import clean_env
from tests.images.conftest import (
    CHANNEL,
    KEY,
    SLOT,
    AlertRecorder,
    FakeClock,
    MakeJob,
    all_rows,
    completions,
    kept_in_database,
    live_config,
    write_config,
)
from tests.images.test_cli import lukas
from tests.standins.openai_api import TINY_PNG, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

THREAD = "1790000000.000100"
ASKER = "U0ASKER"


def big_picture() -> bytes:
    """About 2 MB, different every test: a real picture's size (PostgreSQL bytea, SQLite BLOB), and bytes that can
    only arrive in Slack if they are the ones that were kept."""
    return TINY_PNG + os.urandom(2_000_000)


def posted(slack: SlackStandIn, since: int = 0) -> list[tuple[str, bytes]]:
    """(channel, bytes) of every upload completed after the first `since` completions (the refused ones)."""
    done = completions(slack)[since:]
    return [(params["channel_id"], slack.uploads[file["id"]]) for params in done for file in _files(params)]


def _files(params: dict[str, object]) -> list[dict[str, str]]:
    import json

    files = params.get("files")
    return json.loads(files) if isinstance(files, str) else list(files or [])  # type: ignore[arg-type]


# ----- two replicas, one database


async def test_a_picture_kept_by_one_replica_is_posted_by_another(
    make_job: MakeJob, image_api: OpenAIStandIn, slack_api: SlackStandIn, sessions, tmp_path: Path
) -> None:
    image_api.image_bytes = picture = big_picture()
    replica_a = await make_job(data_dir=tmp_path / "a")
    replica_b = await make_job(data_dir=tmp_path / "b")
    slack_api.channel_errors[CHANNEL] = "not_in_channel"
    row = await replica_a.run_slot(SLOT)
    assert (row.status, row.upload_state, row.local_path) == ("failed", "pending", None)
    assert "kept in the database (any replica can post it)" in row.error
    assert await kept_in_database(sessions) == {row.id: picture}
    failed_attempts = len(completions(slack_api))

    del slack_api.channel_errors[CHANNEL]  # an admin invites Lukas; replica B retries first
    with OnlyOnReplicaA(tmp_path / "a"):
        assert await replica_b.retry_uploads() == 1
    assert posted(slack_api, since=failed_attempts) == [(CHANNEL, picture)]  # once, with the paid bytes
    [stored] = await all_rows(sessions)
    assert (stored.status, stored.upload_state, stored.error) == ("succeeded", "done", None)
    assert await kept_in_database(sessions) == {}  # deleted once posted
    assert await replica_a.retry_uploads() == 0 and await replica_b.retry_uploads() == 0
    assert posted(slack_api, since=failed_attempts) == [(CHANNEL, picture)]
    assert len(image_api.image_requests) == 1
    assert not (tmp_path / "a" / "images").exists() and not (tmp_path / "b" / "images").exists()


class OnlyOnReplicaA:
    """Both test replicas share one filesystem; in Docker each has its own volume at the same path. While replica
    B runs, A's data directory is moved aside, so B sees what it would see on its own volume: nothing of A's."""

    def __init__(self, data_dir: Path) -> None:
        self.path, self.aside = data_dir, data_dir.with_name(data_dir.name + ".on-replica-a")

    def __enter__(self) -> None:
        if self.path.exists():
            self.path.rename(self.aside)

    def __exit__(self, *_exc: object) -> None:
        if self.aside.exists():
            self.aside.rename(self.path)


async def old_layout_row(sessions, *, data_dir: Path, data: bytes, now: dt.datetime) -> GeneratedImage:
    """A picture kept the way Lukas kept them before picture_files: a file in one replica's data directory."""
    path = data_dir / "images" / filename_for(slot_key=KEY, extension="png")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    row = await repo.claim(sessions, slot_key=KEY, now=now, prompt="a bear", theme="science", cost_usd=0.042)
    assert row is not None
    reason = f"not posted to {CHANNEL}: not_in_channel. The image is kept at {path}"
    return await repo.change(
        sessions, row.id, now=now, status="failed", error=reason, local_path=str(path), upload_state="pending"
    )


async def test_an_old_layout_picture_is_not_lost_on_a_replica_without_it_and_moves_into_the_database(
    make_job: MakeJob, slack_api: SlackStandIn, sessions, clock: FakeClock, tmp_path: Path
) -> None:
    picture = big_picture()
    row = await old_layout_row(sessions, data_dir=tmp_path / "a", data=picture, now=clock.now)
    replica_a = await make_job(data_dir=tmp_path / "a")
    replica_b = await make_job(data_dir=tmp_path / "b")

    with OnlyOnReplicaA(tmp_path / "a"):
        assert await replica_b.retry_uploads() == 0  # not here: B leaves it waiting
    [stored] = await all_rows(sessions)
    assert stored.upload_state == "pending" and stored.error == row.error
    assert completions(slack_api) == []

    slack_api.channel_errors[CHANNEL] = "not_in_channel"
    assert await replica_a.retry_uploads() == 0  # A has it: moves it into the database, Slack still refuses
    [stored] = await all_rows(sessions)
    assert (stored.upload_state, stored.local_path) == ("pending", None)
    assert "kept in the database" in stored.error
    assert await kept_in_database(sessions) == {row.id: picture}
    assert not Path(row.local_path).exists()
    refused = len(completions(slack_api))

    del slack_api.channel_errors[CHANNEL]
    assert await replica_b.retry_uploads() == 1  # now any replica can post it
    assert posted(slack_api, since=refused) == [(CHANNEL, picture)]
    [stored] = await all_rows(sessions)
    assert (stored.status, stored.upload_state) == ("succeeded", "done")
    assert await kept_in_database(sessions) == {}


async def test_an_old_layout_picture_is_posted_by_the_replica_that_has_it(
    make_job: MakeJob, slack_api: SlackStandIn, sessions, clock: FakeClock, tmp_path: Path
) -> None:
    picture = big_picture()
    row = await old_layout_row(sessions, data_dir=tmp_path / "a", data=picture, now=clock.now)
    replica_a = await make_job(data_dir=tmp_path / "a")
    replica_b = await make_job(data_dir=tmp_path / "b")
    with OnlyOnReplicaA(tmp_path / "a"):
        assert await replica_b.retry_uploads() == 0
    assert [r.upload_state for r in await all_rows(sessions)] == ["pending"]
    assert await replica_a.retry_uploads() == 1
    assert posted(slack_api) == [(CHANNEL, picture)]
    assert not Path(row.local_path).exists() and await kept_in_database(sessions) == {}
    assert [r.upload_state for r in await all_rows(sessions)] == ["done"]


async def test_a_picture_slack_never_takes_is_given_up_after_30_days(
    make_job: MakeJob, image_api: OpenAIStandIn, slack_api: SlackStandIn, sessions, clock: FakeClock
) -> None:
    slack_api.channel_errors[CHANNEL] = "not_in_channel"
    job = await make_job()
    await job.run_slot(SLOT)
    clock.now = SLOT + dt.timedelta(days=29)
    assert await job.retry_uploads() == 0
    assert [r.upload_state for r in await all_rows(sessions)] == ["pending"]
    assert len(await kept_in_database(sessions)) == 1

    attempts = len(completions(slack_api))
    clock.now = SLOT + dt.timedelta(days=30, seconds=2)
    del slack_api.channel_errors[CHANNEL]
    assert await job.retry_uploads() == 0
    [stored] = await all_rows(sessions)
    assert stored.upload_state == "expired" and "not posted within 30 days" in stored.error
    assert await kept_in_database(sessions) == {}
    assert len(completions(slack_api)) == attempts  # nothing posted


async def test_when_the_database_refuses_the_bytes_they_are_kept_on_this_replicas_disk(
    make_job: MakeJob, slack_api: SlackStandIn, sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(repo, "keep_file", refuse)
    slack_api.channel_errors[CHANNEL] = "not_in_channel"
    job = await make_job()
    row = await job.run_slot(SLOT)
    path = Path(row.local_path)
    assert row.upload_state == "pending" and path.read_bytes() == TINY_PNG
    assert f"kept at {path} (only this replica can post it)" in row.error
    del slack_api.channel_errors[CHANNEL]
    assert await job.retry_uploads() == 1
    assert posted(slack_api)[-1] == (CHANNEL, TINY_PNG) and not path.exists()


# ----- pictures drawn on request


def picture_desk(job: WeeklyImageJob, *, config: LiveConfig, sessions, slack: SlackStandIn, clock) -> PictureDesk:  # type: ignore[no-untyped-def]
    return PictureDesk(
        config=config,
        sessions=sessions,
        slack=build_web_client(token="xoxb-test", api_url=slack.api_url),
        image_client=job.image_client,
        check_prompt=job.check_prompt,
        delivery=job.delivery,
        clock=clock,
    )


async def ask_for_a_picture(desk: PictureDesk) -> None:
    outcome = await desk.accept(user_id=ASKER, channel_id=CHANNEL, ts=THREAD, thread_ts=THREAD, idea="at the beach")
    assert outcome == "claimed"
    await desk.drain()


async def test_a_request_picture_whose_upload_fails_is_kept_and_posted_in_its_thread_by_another_replica(
    make_job: MakeJob,
    image_api: OpenAIStandIn,
    slack_api: SlackStandIn,
    sessions,
    clock: FakeClock,
    alerts: AlertRecorder,
    tmp_path: Path,
) -> None:
    image_api.image_bytes = picture = big_picture()
    live = live_config(tmp_path)
    replica_a = await make_job(config=live, data_dir=tmp_path / "a")
    replica_b = await make_job(config=live, data_dir=tmp_path / "b")
    slack_api.fail("files.completeUploadExternal", "internal_error")
    await ask_for_a_picture(picture_desk(replica_a, config=live, sessions=sessions, slack=slack_api, clock=clock))
    [row] = await all_rows(sessions)
    assert (row.status, row.upload_state, row.cost_usd) == ("failed", "pending", pytest.approx(0.042))
    assert "upload failed: internal_error" in row.error and "kept in the database" in row.error
    assert await kept_in_database(sessions) == {row.id: picture}
    assert alerts.kinds() == []  # a transient Slack error: nothing for an admin to fix

    assert await replica_b.retry_uploads() == 1
    (done,) = [params for params in completions(slack_api)[1:]]
    assert done["channel_id"] == CHANNEL and done["thread_ts"] == THREAD
    assert posted(slack_api, since=1) == [(CHANNEL, picture)]
    [stored] = await all_rows(sessions)
    assert (stored.status, stored.upload_state, stored.error) == ("succeeded", "done", None)
    assert stored.slack_file_id and await kept_in_database(sessions) == {}
    assert len(image_api.image_requests) == 1


async def test_retry_uploads_command_posts_a_kept_request_picture(migrated_db: str, tmp_path: Path) -> None:
    engine = create_engine(migrated_db)
    sessions = session_factory(engine)
    config = write_config(tmp_path)
    live = live_config(tmp_path)
    clock = FakeClock(dt.datetime.now(dt.UTC))
    async with OpenAIStandIn() as image_api, SlackStandIn() as slack_api:
        image_api.image_bytes = picture = big_picture()
        client = ImageClient(api_key="sk-test", base_url=image_api.base_url, timeout=5)
        job = WeeklyImageJob(
            config=live, sessions=sessions, slack=build_web_client(token="xoxb-test", api_url=slack_api.api_url),
            image_client=client, data_dir=tmp_path / "replica-a", clock=clock,
        )  # fmt: skip
        slack_api.channel_errors[CHANNEL] = "not_in_channel"
        try:
            await ask_for_a_picture(picture_desk(job, config=live, sessions=sessions, slack=slack_api, clock=clock))
            [row] = await all_rows(sessions)
            assert row.upload_state == "pending" and "not_in_channel" in row.error
            assert "lukas image --retry-uploads" in row.error
        finally:
            await client.aclose()
            await engine.dispose()

        del slack_api.channel_errors[CHANNEL]
        env = clean_env(
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_API_URL=slack_api.api_url,
            DATABASE_URL=migrated_db,
            LUKAS_CONFIG=str(config),
            LUKAS_DATA_DIR=str(tmp_path / "replica-b"),  # another replica's data directory
        )
        code, out, err = await lukas("image", "--retry-uploads", env=env)
        assert code == 0, err
        assert "1 kept picture(s) posted" in out
        assert posted(slack_api, since=1) == [(CHANNEL, picture)]
        (done,) = completions(slack_api)[1:]
        assert done["thread_ts"] == THREAD and done["initial_comment"].startswith("Here you go!")

    engine = create_engine(migrated_db)
    try:
        sessions = session_factory(engine)
        [stored] = await all_rows(sessions)
        assert (stored.status, stored.upload_state) == ("succeeded", "done")
        assert await kept_in_database(sessions) == {}
    finally:
        await engine.dispose()
