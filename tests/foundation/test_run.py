"""`lukas run`: HTTP mode serves /healthz and checks Slack signatures, stops cleanly, names what is missing."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.errors import StartupError
from bot.settings import load_settings
from bot.store import migrate
from bot.store.db import create_engine
from tests.harness import write_config
from tests.helpers import SHIPPED_CONFIG, clean_env, free_port, run_lukas
from tests.standins.slack_api import SlackStandIn

SIGNING_SECRET = "test-signing-secret"
START_TIMEOUT = 30.0


def signed_headers(body: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }


async def wait_until_healthy(http: httpx.AsyncClient, process: asyncio.subprocess.Process) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.returncode is not None:
            stderr = (await process.stderr.read()).decode() if process.stderr else ""
            pytest.fail(f"lukas run exited with {process.returncode} before answering /healthz:\n{stderr}")
        try:
            response = await http.get("/healthz")
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail("lukas run did not answer /healthz in time")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_http_mode_serves_slack_and_health_then_stops_cleanly(tmp_path: Path, stop_signal: int) -> None:
    port = free_port()
    database = tmp_path / "data" / "lukas.db"
    async with SlackStandIn() as slack:
        env = clean_env(
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            OPENAI_API_KEY="sk-test",
            DATABASE_URL=f"sqlite:///{database}",
            LUKAS_CONFIG=str(SHIPPED_CONFIG),
            PORT=str(port),
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            env=env,
            cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as http:
                health = await wait_until_healthy(http, process)
                assert health.json()["ok"] is True
                assert health.json()["database"] == "ok"
                assert database.is_file()  # migrated on start

                body = json.dumps({"type": "url_verification", "challenge": "honey-pot", "token": "x"})
                unsigned = await http.post("/slack/events", content=body, headers={"Content-Type": "application/json"})
                assert unsigned.status_code == 401

                wrong_secret = await http.post("/slack/events", content=body, headers=signed_headers(body, secret="no"))
                assert wrong_secret.status_code == 401

                stale = await http.post(
                    "/slack/events", content=body, headers=signed_headers(body, timestamp=int(time.time()) - 600)
                )
                assert stale.status_code == 401

                signed = await http.post("/slack/events", content=body, headers=signed_headers(body))
                assert signed.status_code == 200
                assert signed.json() == {"challenge": "honey-pot"}

            started = time.monotonic()
            process.send_signal(stop_signal)
            returncode = await asyncio.wait_for(process.wait(), timeout=10)
            assert returncode == 0
            assert time.monotonic() - started < 5
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        stderr = (await process.stderr.read()).decode() if process.stderr else ""
        assert "Traceback" not in stderr
        assert f":{port}/slack/events" in stderr  # the startup line says where Slack should send events
        assert "xoxb-test" not in stderr and SIGNING_SECRET not in stderr


def test_missing_tokens_stop_run_with_one_message(tmp_path: Path) -> None:
    database = tmp_path / "lukas.db"
    env = clean_env(LUKAS_CONFIG=str(SHIPPED_CONFIG), DATABASE_URL=f"sqlite:///{database}")
    result = run_lukas("run", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "lukas: missing environment variable(s) for HTTP mode (no SLACK_APP_TOKEN): SLACK_BOT_TOKEN, "
        "SLACK_SIGNING_SECRET. Set them in the environment (or a .env file your shell loads); see "
        "docs/quickstart.md, 'Get the tokens'."
    ]
    assert not database.exists()  # refused before touching anything


@pytest.mark.parametrize(
    ("env", "missing", "mode"),
    [
        ({}, "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET", "HTTP mode"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET", "HTTP mode"),
        ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN", "HTTP mode"),
        ({"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN", "Socket Mode"),
    ],
)
def test_missing_tokens_are_named_for_the_mode_in_use(env: dict[str, str], missing: str, mode: str) -> None:
    with pytest.raises(StartupError) as caught:
        load_settings(env).require_slack()
    message = str(caught.value)
    assert f"for {mode}" in message
    assert f": {missing}. " in message
    assert "docs/quickstart.md" in message


def test_run_with_a_broken_config_prints_the_errors(tmp_path: Path) -> None:
    broken = tmp_path / "config.yml"
    broken.write_text(SHIPPED_CONFIG.read_text().replace("  temperature: 0.7", "  temprature: 0.7"))
    env = clean_env(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", LUKAS_CONFIG=str(broken))
    result = run_lukas("run", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "llm.temprature: unknown setting (did you mean 'temperature'?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("upgrade", [True, False], ids=["upgrade-on-start", "no-upgrade"])
def test_run_with_an_unreachable_database_is_one_clear_line(tmp_path: Path, upgrade: bool) -> None:
    url = f"postgresql://lukas:hunter2-secret@127.0.0.1:{free_port()}/lukas"
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        OPENAI_API_KEY="sk-test",
        LUKAS_CONFIG=str(SHIPPED_CONFIG),
        DATABASE_URL=url,
        PORT=str(free_port()),
    )
    result = run_lukas("run", *([] if upgrade else ["--no-upgrade"]), env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "hunter2-secret" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("lukas: ")]
    assert len(errors) == 1, result.stderr
    assert "the database at postgresql+psycopg://lukas:***@127.0.0.1" in errors[0]


def test_settings_pick_the_mode_and_port() -> None:
    http = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert not http.socket_mode and http.port == 3000 and http.config_path == "config.yml"
    http.require_slack()
    assert load_settings({"PORT": "8080"}).port == 8080
    assert load_settings({"PORT": "8080"}, port=9000).port == 9000
    socket_mode = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert socket_mode.socket_mode
    socket_mode.require_slack()  # no signing secret needed in Socket Mode
    with pytest.raises(StartupError, match="PORT must be a number"):
        load_settings({"PORT": "three thousand"})
    with pytest.raises(StartupError, match="xoxb-"):
        load_settings({"SLACK_BOT_TOKEN": "xoxp-user-token", "SLACK_SIGNING_SECRET": "s"}).require_slack()
    with pytest.raises(StartupError, match="xapp-"):
        load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}).require_slack()


NO_AUTH_RETRY = {"slack": {"auth_retry_seconds": 0}}


async def test_healthz_answers_503_while_the_database_is_unreachable(tmp_path: Path) -> None:
    from bot.runtime import Lukas

    url = f"sqlite+aiosqlite:///{tmp_path / 'lukas.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",
            "DATABASE_URL": url,
        },
        port=0,
    )
    # Slack is unreachable here too: auth.test is not retried (auth_retry_seconds: 0), Lukas serves anyway.
    path = write_config(tmp_path / "config.yml", llm_base_url="http://127.0.0.1:9/v1", overrides=NO_AUTH_RETRY)
    lukas = Lukas(settings, LiveConfig(load_config(path, env={}), path=path))
    port = await lukas.start(host="127.0.0.1", port=0)
    assert port
    good_engine = lukas.services.engine
    dead_engine = create_engine(f"postgresql://lukas:pw@127.0.0.1:{free_port()}/lukas")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=15) as http:
            healthy = await http.get("/healthz")
            assert healthy.status_code == 200 and healthy.json()["database"] == "ok"

            lukas.services.engine = dead_engine
            broken = await http.get("/healthz")
            assert broken.status_code == 503
            assert broken.json()["ok"] is False
            assert broken.json()["database"] == "unreachable"
            assert "pw@" not in broken.text

            lukas.services.engine = good_engine
            recovered = await http.get("/healthz")
            assert recovered.status_code == 200
    finally:
        lukas.services.engine = good_engine
        await dead_engine.dispose()
        await lukas.stop()
