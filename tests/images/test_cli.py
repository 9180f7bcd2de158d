"""`lukas image`: --dry-run for chosen dates, and --now / --retry-uploads against the stand-ins."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from tests.helpers import SHIPPED_CONFIG, clean_env
from tests.images.conftest import CHANNEL, write_config
from tests.standins.openai_api import TINY_PNG, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


def dry_run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["image", "--dry-run", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2026-10-30", ["occasion:  halloween", "season:    autumn", "jack-o-lanterns"]),
        ("2026-12-21", ["occasion:  holiday", "season:    winter", "wrapped presents"]),
        ("2026-07-06", ["occasion:  none", "season:    summer"]),
    ],
)
def test_dry_run_prints_theme_occasion_and_prompt(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, date: str, expected: list[str]
) -> None:
    monkeypatch.setenv("LUKAS_CONFIG", str(SHIPPED_CONFIG))
    out = dry_run(capsys, "--date", date)
    for text in expected:
        assert text in out
    assert "prompt:    A friendly stuffed teddy bear mascot named Lukas" in out
    assert "theme:     " in out and "checks:    pass" in out


def test_dry_run_for_the_southern_hemisphere_and_a_milestone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    milestone = {"name": "paper accepted", "date": "2027-03-15"}
    path = write_config(tmp_path, {"images": {"hemisphere": "south", "milestones": [milestone]}})
    monkeypatch.setenv("LUKAS_CONFIG", str(path))
    out = dry_run(capsys, "--date", "2026-12-21")
    assert "season:    summer (southern hemisphere)" in out and "occasion:  holiday" in out
    out = dry_run(capsys, "--date", "2027-03-15", "--previous-theme", "science")
    assert "occasion:  milestone: paper accepted" in out and "theme:     celebration" in out
    assert "previous:  science (given)" in out


def test_admin_mistakes_are_clear(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUKAS_CONFIG", str(SHIPPED_CONFIG))
    with pytest.raises(SystemExit) as exited:
        main(["image", "--dry-run", "--date", "30.10.2026"])
    assert exited.value.code == 2
    assert "write it as YYYY-MM-DD" in capsys.readouterr().err
    assert main(["image", "--now", "--date", "2026-10-30"]) == 1
    assert "only go with --dry-run" in capsys.readouterr().err
    assert main(["image", "--dry-run", "--previous-theme", "pirates"]) == 1
    assert "not a theme in images.themes" in capsys.readouterr().err
    assert main(["image", "--now"]) == 1  # no SLACK_BOT_TOKEN
    assert "SLACK_BOT_TOKEN" in capsys.readouterr().err


async def lukas(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """`python -m bot ARGS` without blocking the event loop the stand-ins run on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


def rows(database: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM generated_images ORDER BY id")]


def kept_files(database: Path) -> dict[int, bytes]:
    with sqlite3.connect(database) as connection:
        return dict(connection.execute("SELECT image_id, data FROM picture_files"))


async def test_now_and_retry_uploads_against_the_standins(tmp_path: Path) -> None:
    database = tmp_path / "lukas.db"
    config = write_config(tmp_path)
    async with OpenAIStandIn() as image_api, SlackStandIn() as slack_api:
        env = clean_env(
            OPENAI_BASE_URL=image_api.base_url,
            OPENAI_API_KEY="sk-test",
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_API_URL=slack_api.api_url,
            DATABASE_URL=f"sqlite:///{database}",
            LUKAS_CONFIG=str(config),
        )
        code, out, err = await lukas("image", "--now", env=env)
        assert code == 0, err
        assert "status:    succeeded" in out and f"posted to: {CHANNEL}" in out
        [row] = rows(database)
        assert (row["status"], row["attempts"], row["upload_state"]) == ("succeeded", 1, "done")
        assert row["slot_key"].startswith("manual:") and row["cost_usd"] == pytest.approx(0.042)
        assert row["slack_file_id"] == "F000001" and row["slack_permalink"] is None  # no files.info (no files:read)
        assert len(image_api.image_requests) == 1 and list(slack_api.uploads.values()) == [TINY_PNG]
        (caption_request,) = image_api.chat_requests  # Lukas wrote the caption himself, through the chat gateway
        assert "Write the caption" in caption_request.body["messages"][-1]["content"]
        (complete,) = slack_api.calls_to("files.completeUploadExternal")
        assert complete.params["initial_comment"] == image_api.reply

        # Slack refuses the channel: the paid image is kept; --retry-uploads posts it once Lukas is invited
        slack_api.channel_errors[CHANNEL] = "not_in_channel"
        code, out, err = await lukas("image", "--now", env=env)
        assert code == 1
        assert "status:    failed" in out and "not_in_channel" in out
        assert "kept in:   the database, until Slack has it" in out
        assert "could not post to" in err  # the admin-readable log line
        kept = rows(database)[1]
        assert kept["upload_state"] == "pending" and kept["local_path"] is None
        assert kept_files(database) == {kept["id"]: TINY_PNG}

        del slack_api.channel_errors[CHANNEL]
        code, out, err = await lukas("image", "--retry-uploads", env=env)
        assert code == 0, err
        assert "1 kept picture(s) posted" in out
        assert [r["status"] for r in rows(database)] == ["succeeded", "succeeded"]
        assert kept_files(database) == {}
        assert len(image_api.image_requests) == 2
