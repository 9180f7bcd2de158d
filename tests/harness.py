"""Run a real Lukas (HTTP mode, in-process) against the loopback stand-ins, and drive it like Slack does."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import yaml
from sqlalchemy import select

from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.runtime import Lukas
from bot.settings import load_settings
from bot.store import migrate
from bot.store.models import Conversation, LLMCall, Message
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import TEAM_ID, SlackStandIn

SIGNING_SECRET = "test-signing-secret"
REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.yml"
_event_ids = itertools.count(1)
_ts = itertools.count(1)


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_NO_WAIT = {"wait_min_seconds": 0, "wait_max_seconds": 0, "jitter_seconds": 0}
FAST_RETRIES = {"retry": {"chat": _NO_WAIT, "images": _NO_WAIT}}


def write_config(path: Path, *, llm_base_url: str, overrides: dict[str, Any] | None = None) -> Path:
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw = deep_merge(raw, {"llm": {"api_base": llm_base_url}, "images": {"enabled": False}, **FAST_RETRIES})
    raw = deep_merge(raw, overrides or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def new_ts() -> str:
    return f"{1_800_000_000 + next(_ts)}.{next(_ts) % 1_000_000:06d}"


def message_event(
    *,
    text: str,
    channel: str = "D0DM",
    user: str = "U0ANNA",
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts or new_ts(),
        "channel_type": channel_type or ("im" if channel.startswith("D") else "channel"),
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def mention_event(
    *, text: str, channel: str = "C0GENERAL", user: str = "U0ANNA", ts: str | None = None, thread_ts: str | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "app_mention",
        "channel": channel,
        "user": user,
        "text": f"<@UBOT> {text}",
        "ts": ts or new_ts(),
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def envelope(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": TEAM_ID,
        "api_app_id": "A0LUKAS",
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):08d}",
        "event_time": int(time.time()),
        "event": event,
        "authorizations": [{"team_id": TEAM_ID, "user_id": "UBOT", "is_bot": True}],
    }


def sign(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}", "Content-Type": "application/json"}


def slash_command_body(
    *,
    text: str,
    response_url: str,
    user: str = "U0ANNA",
    channel: str = "C0GENERAL",
    command: str = "/lukas",
) -> bytes:
    """A slash command as Slack sends it: form-encoded."""
    return urlencode(
        {
            "token": "legacy",
            "team_id": TEAM_ID,
            "team_domain": "research",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0LUKAS",
            "response_url": response_url,
            "trigger_id": f"{next(_event_ids)}.1.abc",
        }
    ).encode()


class Harness:
    def __init__(self, lukas: Lukas, port: int, slack: SlackStandIn, llm: OpenAIStandIn, http: aiohttp.ClientSession):
        self.lukas = lukas
        self.port = port
        self.slack = slack
        self.llm = llm
        self.http = http
        self.waits: list[float] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def post_raw(self, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
        started = time.perf_counter()
        async with self.http.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            await response.read()
            return response.status, time.perf_counter() - started

    async def send(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> tuple[int, float]:
        """Deliver an event as Slack does (signed). Returns (HTTP status, seconds until the ack)."""
        payload = json.dumps(body or envelope(event, event_id=event_id)).encode()
        headers = sign(payload)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self.post_raw(payload, headers)

    async def command(
        self, text: str, *, user: str = "U0ANNA", channel: str = "C0GENERAL", key: str | None = None
    ) -> tuple[int, Any]:
        """Run `/lukas text` as Slack does (signed form post). Returns (HTTP status, the ack's JSON body or None);
        later answers arrive at `self.slack.responses(key)`."""
        body = slash_command_body(
            text=text, user=user, channel=channel, response_url=self.slack.response_url(key or "cmd")
        )
        headers = {**sign(body), "Content-Type": "application/x-www-form-urlencoded"}
        async with self.http.post(f"{self.url}/slack/events", data=body, headers=headers) as response:
            raw = await response.read()
            return response.status, json.loads(raw) if raw.strip() else None

    async def wait_until(self, condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.02)

    async def settle(self, *, timeout: float = 10.0) -> None:
        """Wait until every accepted message has been answered (or given up)."""
        await self.wait_until(lambda: self.lukas.services.chat.in_flight == 0, timeout=timeout)

    async def posts(self) -> list[str]:
        return self.slack.posted_texts()

    async def rows(self, model: type) -> list[Any]:
        async with self.lukas.services.sessions() as session:
            return list(await session.scalars(select(model).order_by(model.id)))

    async def messages(self) -> list[Message]:
        return await self.rows(Message)

    async def conversations(self) -> list[Conversation]:
        return await self.rows(Conversation)

    async def llm_calls(self) -> list[LLMCall]:
        return await self.rows(LLMCall)


@asynccontextmanager
async def running_lukas(
    tmp_path: Path,
    database_url: str,
    *,
    overrides: dict[str, Any] | None = None,
    slack: SlackStandIn | None = None,
    llm: OpenAIStandIn | None = None,
    migrate_first: bool = True,
    stop_grace: float | None = 5,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Harness]:
    """`stop_grace`: how long answers in progress get at the end (None: config.yml's replicas.shutdown_grace)."""
    async with (
        SlackStandIn() if slack is None else _noop(slack) as slack_api,
        OpenAIStandIn() if llm is None else _noop(llm) as llm_api,
    ):
        config_path = write_config(tmp_path / "config.yml", llm_base_url=llm_api.base_url, overrides=overrides)
        settings = load_settings(
            env={
                "SLACK_BOT_TOKEN": "xoxb-test-token",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack_api.api_url,
                "OPENAI_API_KEY": "sk-test-key-000000000000",
                "OPENAI_BASE_URL": llm_api.base_url,
                "DATABASE_URL": database_url,
                "LUKAS_CONFIG": str(config_path),
                **(env or {}),
            }
        )
        if migrate_first:
            await asyncio.to_thread(migrate.upgrade, database_url)
        lukas = Lukas(settings, LiveConfig(load_config(config_path), path=config_path))
        harness_waits: list[float] = []

        async def no_sleep(seconds: float) -> None:
            harness_waits.append(seconds)

        lukas.services.gateway._sleep = no_sleep
        port = await lukas.start(host="127.0.0.1", port=0)
        assert port is not None
        async with aiohttp.ClientSession() as http:
            harness = Harness(lukas, port, slack_api, llm_api, http)
            harness.waits = harness_waits
            try:
                yield harness
            finally:
                await lukas.stop(drain_seconds=stop_grace)


@asynccontextmanager
async def _noop(value: Any) -> AsyncIterator[Any]:
    yield value
