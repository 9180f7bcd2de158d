"""Issue 23: before Slack is reached Lukas can be stopped and checked, an unreachable Slack is one clear line a
minute, example values are refused by name, and a SQLite file that cannot be opened ends with one clean error."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import DatabaseUnavailableError
from bot.slack.connecting import SlackConnecting
from bot.startup_logic import is_placeholder, placeholder_problems
from bot.store.db import create_engine, ping
from tests.foundation.test_run import SIGNING_SECRET, signed_headers
from tests.harness import write_config
from tests.helpers import REPO_ROOT, SHIPPED_CONFIG, clean_env, free_port, run_lukas

START_TIMEOUT = 60.0


async def _connecting_healthz(
    http: httpx.AsyncClient, process: asyncio.subprocess.Process, *, wanted: str
) -> httpx.Response:
    """/healthz once its reason contains `wanted` (Lukas is up, but not connected to Slack)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.returncode is None, "lukas run exited while connecting"
        try:
            response = await http.get("/healthz")
            if wanted in response.json().get("slack", ""):
                return response
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail(f"/healthz never said {wanted!r}")


async def _stderr_until(process: asyncio.subprocess.Process, text: str, seen: list[str], *, timeout: float) -> float:
    """Read stderr lines into `seen` until one contains `text`; returns when that was (time.monotonic)."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), timeout=max(0.0, deadline - time.monotonic()))
        if not line:
            pytest.fail(f"stderr ended without {text!r}:\n" + "".join(seen))
        seen.append(line.decode())
        if text in seen[-1]:
            return time.monotonic()


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_stop_and_healthz_while_slack_refuses_connections(tmp_path: Path, mode: str) -> None:
    """Slack refuses every connection: /healthz answers 503 with the reason, SIGTERM stops Lukas at once (exit 0),
    and the log has one advice line, no tracebacks. Socket Mode gets past auth.test into the connect loop."""
    port, dead = free_port(), free_port()
    slack_url = f"http://127.0.0.1:{dead}/api/"
    retry = 0 if mode == "socket" else 120  # HTTP mode: still retrying auth.test when the signal comes
    config = write_config(
        tmp_path / "config.yml",
        llm_base_url="http://127.0.0.1:9/v1",
        overrides={"slack": {"auth_retry_seconds": retry}},
    )
    mode_env = {"SLACK_APP_TOKEN": "xapp-1-test"} if mode == "socket" else {"SLACK_SIGNING_SECRET": SIGNING_SECRET}
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_API_URL=slack_url,
        OPENAI_API_KEY="sk-test",
        DATABASE_URL=f"sqlite:///{tmp_path / 'lukas.db'}",
        LUKAS_CONFIG=str(config),
        PORT=str(port),
        **mode_env,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    seen: list[str] = []
    try:
        step = "apps.connections.open" if mode == "socket" else "auth.test"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as http:
            health = await _connecting_healthz(http, process, wanted=f"{step}: cannot reach Slack")
            assert health.status_code == 503
            body = health.json()
            assert body["ok"] is False and body["database"] == "ok"
            assert body["slack"].startswith(f"connecting to Slack: {step}: cannot reach Slack at {slack_url} (")
            assert "connection error" in body["slack"] and "check the network" in body["slack"]
            if mode == "http":  # events wait until Slack is reached: 503, and Slack delivers them again
                event = '{"type": "event_callback", "event": {"type": "message", "text": "hi"}}'
                assert (
                    await http.post("/slack/events", content=event, headers=signed_headers(event))
                ).status_code == 503
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stopped = await _stderr_until(process, "Lukas stopped", seen, timeout=10)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert stopped - signalled < 2.0, f"stopping took {stopped - signalled:.2f} s"
    log = "".join(seen) + (await process.stderr.read()).decode() if process.stderr else ""
    assert "Traceback" not in log and "Event loop is closed" not in log, log
    assert "A retry handler found" not in log, log
    advice = [line for line in log.splitlines() if "cannot reach Slack at" in line]
    assert len(advice) == 1, log  # several failed tries, one line (the next would come a minute later)
    assert "check the network, DNS and proxy" in advice[0] and " WARNING " in advice[0]


def test_an_unreachable_slack_is_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    connecting = SlackConnecting(url="https://slack.example/api/", clock=lambda: now[0])
    connecting.stage("auth.test", "checking the bot token")
    caplog.set_level(logging.INFO, logger="bot.slack.connecting")
    for _ in range(30):  # a try every 2 s for 60 s: one line, then the next minute's
        connecting.failed(ConnectionRefusedError(111, "Connect call failed"))
        now[0] += 2
    connecting.failed(OSError(-2, "Name or service not known"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("cannot reach Slack at https://slack.example/api/ (connection error: ")
    assert "(DNS error: " in lines[1]
    assert connecting.verdict() == (False, f"connecting to Slack: auth.test: {lines[1]}")
    connecting.done()
    assert connecting.verdict() == (True, "connected")
    assert caplog.records[-1].getMessage() == "Slack reached at https://slack.example/api/"


# ----- example values from .env.example


def _env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO_ROOT / ".env.example").read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs if not name.startswith("#")}


def test_the_shipped_example_values_are_refused_by_name(tmp_path: Path) -> None:
    example = _env_example()
    secrets = {name: example[name] for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "OPENAI_API_KEY")}
    env = clean_env(**secrets, LUKAS_CONFIG=str(SHIPPED_CONFIG), DATABASE_URL=f"sqlite:///{tmp_path / 'lukas.db'}")
    result = run_lukas("run", env=env, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    for name in secrets:
        assert f"{name} still holds an example value: set it to the real one" in line
    assert not any(value in line for value in secrets.values())  # the value itself is never repeated
    assert "docs/quickstart.md" in line
    assert not (tmp_path / "lukas.db").exists()  # refused before touching anything


_BASE62 = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=20, max_size=64)
_DIGITS = st.text(alphabet="0123456789", min_size=8, max_size=13)


@given(
    kind=st.sampled_from(["bot", "app", "openai"]),
    first=_DIGITS,
    second=_DIGITS,
    secret=_BASE62,
)
def test_a_real_secrets_shape_is_never_a_placeholder(kind: str, first: str, second: str, secret: str) -> None:
    value = {
        "bot": f"xoxb-{first}-{second}-{secret[:24]}",
        "app": f"xapp-1-A{first}-{second}-{secret}",
        "openai": f"sk-proj-{secret}",
    }[kind]
    assert not is_placeholder(value)
    assert placeholder_problems({"SLACK_BOT_TOKEN": value, "OPENAI_API_KEY": value}) == []


@given(
    prefix=st.sampled_from(["", "xoxb-", "xapp-", "sk-", "sk-proj-"]),
    filler=st.sampled_from(["your", "YOUR", "changeme", "change-me", "replace_me", "placeholder", "..."]),
    rest=st.sampled_from(["", "-bot-token", "_KEY_HERE", "-to-a-long-random-password", " token"]),
)
def test_example_shaped_values_are_placeholders(prefix: str, filler: str, rest: str) -> None:
    value = f"{prefix}{filler}{rest}"
    assert is_placeholder(value) and is_placeholder(f"<{value or 'x'}>")
    assert placeholder_problems({"ANTHROPIC_API_KEY": value})[0].startswith("ANTHROPIC_API_KEY still holds")


# ----- a SQLite file that cannot be opened


async def _failed_ping(url: str) -> str:
    engine = create_engine(url)
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await ping(engine)
        return str(caught.value)
    finally:
        await engine.dispose()


def test_a_sqlite_file_that_cannot_be_opened_starts_no_aiosqlite_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiosqlite's failed open leaves its worker to post a stop to the event loop later; when Lukas exits on that
    very error the loop is closed first and the worker prints 'Event loop is closed' after the error line. The
    file is now opened once with sqlite3 first: a file that cannot be opened fails before that worker exists."""
    (tmp_path / "lukas.db").mkdir()  # a folder where the file should be: "unable to open database file"
    started: list[object] = []
    start = threading.Thread.start

    def recording_start(thread: threading.Thread) -> None:
        started.append(getattr(thread, "_target", None))
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    message = asyncio.run(_failed_ping(f"sqlite:///{tmp_path / 'lukas.db'}"))
    assert "unable to open database file" in message
    workers = [t for t in started if getattr(t, "__module__", "") == "aiosqlite.core"]
    assert workers == []


def test_run_without_the_api_key_is_refused_naming_it(tmp_path: Path) -> None:
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s",
        LUKAS_CONFIG=str(SHIPPED_CONFIG),
        DATABASE_URL=f"sqlite:///{tmp_path / 'lukas.db'}",
        PORT=str(free_port()),
    )
    result = run_lukas("run", env=env, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("lukas: missing API key(s): llm (openai:") and "OPENAI_API_KEY is not set" in line
    assert not (tmp_path / "lukas.db").exists()
