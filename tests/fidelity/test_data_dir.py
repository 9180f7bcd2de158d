"""Files that survive Docker: pictures are kept in the database (with SQLite, a file under the data directory),
never in the (read-only) config folder; and `lukas image --now` says what it is doing as it goes."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import load_settings, resolve_data_dir
from tests.helpers import SHIPPED_CONFIG, clean_env, free_port
from tests.images.conftest import CHANNEL, write_config
from tests.images.test_cli import kept_files
from tests.standins.openai_api import TINY_PNG, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn


def test_data_dir_resolution() -> None:
    assert resolve_data_dir(env={"LUKAS_DATA_DIR": "/srv/lukas"}, database_url="sqlite:///x/l.db") == Path("/srv/lukas")
    assert resolve_data_dir(env={}, database_url="sqlite+aiosqlite:////var/lib/lukas/lukas.db") == Path(
        "/var/lib/lukas"
    )
    assert resolve_data_dir(env={}, database_url="sqlite:///./data/lukas.db") == Path("data")
    assert resolve_data_dir(env={}, database_url="postgresql://u:p@db:5432/lukas") == Path("data")
    assert resolve_data_dir(env={}, database_url="sqlite:///:memory:") == Path("data")
    assert resolve_data_dir(env={}, database_url=None) == Path("data")
    settings = load_settings(env={"DATABASE_URL": "sqlite:////data/lukas.db", "LUKAS_CONFIG": "/config/config.yml"})
    assert settings.data_dir == Path("/data")  # not /config


def _read_only_mounts_work() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && ! touch /tmp/.x"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _command(folder: Path, *args: str) -> list[str]:
    """`lukas ARGS` with `folder` really mounted read-only (as `:ro` in Docker), or, for a user who is not root,
    the folder made read-only by its permissions."""
    lukas = shlex.join([sys.executable, "-m", "bot", *args])
    if _read_only_mounts_work():
        quoted = shlex.quote(str(folder))
        script = f"mount --bind {quoted} {quoted} && mount -o remount,bind,ro {quoted} && exec {lukas}"
        return ["unshare", "-m", "sh", "-c", script]
    if os.geteuid() == 0:
        pytest.skip("running as root without mount namespaces: cannot make a folder read-only")
    folder.chmod(0o555)
    return shlex.split(lukas)


def test_a_read_only_data_folder_names_the_uid_and_the_chown(tmp_path: Path) -> None:
    """Issue 23: not sqlite's bare 'unable to open database file', but the folder, the uid and the fix; one line."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        OPENAI_API_KEY="sk-test",
        LUKAS_CONFIG=str(SHIPPED_CONFIG),
        DATABASE_URL=f"sqlite:///{data_dir / 'lukas.db'}",
        PORT=str(free_port()),
    )
    result = subprocess.run(
        _command(data_dir, "run"), env=env, capture_output=True, text=True, timeout=120, check=False
    )
    data_dir.chmod(0o755)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Event loop is closed" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("20")]  # log lines have a date
    assert line.startswith(f"lukas: cannot write to the data folder {data_dir} (SQLite database lukas.db)")
    assert f"Lukas runs as uid {os.geteuid()}" in line
    assert "`chown -R 10001 <the host folder mounted at" in line and "DATABASE_URL" in line
    assert not (data_dir / "lukas.db").exists()


async def test_image_job_with_a_read_only_config_folder_keeps_pictures_in_the_data_dir(tmp_path: Path) -> None:
    config_dir, data_dir = tmp_path / "config", tmp_path / "data"
    config_dir.mkdir()
    data_dir.mkdir()
    config = write_config(config_dir)
    before = sorted(p.name for p in config_dir.iterdir())
    async with OpenAIStandIn() as image_api, SlackStandIn() as slack_api:
        image_api.image_latency = 1.0
        slack_api.channel_errors[CHANNEL] = "not_in_channel"  # the upload fails: the paid picture must be kept
        env = clean_env(
            OPENAI_BASE_URL=image_api.base_url,
            OPENAI_API_KEY="sk-test",
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_API_URL=slack_api.api_url,
            DATABASE_URL=f"sqlite:///{data_dir / 'lukas.db'}",
            LUKAS_CONFIG=str(config),
        )
        process = await asyncio.create_subprocess_exec(
            *_command(config_dir, "image", "--now"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        seen: list[str] = []
        while not any(line.startswith("generating…") for line in seen):
            line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
            assert line, f"no 'generating…' line; got {seen}"
            seen.append(line.decode().rstrip("\n"))
        assert process.returncode is None  # printed while the picture is still being made
        assert any(line.startswith("theme:") for line in seen) and any(line.startswith("prompt:") for line in seen)
        rest, err = await asyncio.wait_for(process.communicate(), timeout=60)
        out = "\n".join(seen) + "\n" + rest.decode()
        config_dir.chmod(0o755)

    assert "generated in 1 attempt(s); cost $0.042" in out and "uploading to 1 channel(s)…" in out, out
    assert "Read-only file system" not in err.decode() and "Permission denied" not in err.decode(), err.decode()
    assert kept_files(data_dir / "lukas.db") == {1: TINY_PNG}  # in the database, here a SQLite file in the data dir
    assert "kept in:   the database" in out
    assert sorted(p.name for p in config_dir.iterdir()) == before  # nothing written next to config.yml
