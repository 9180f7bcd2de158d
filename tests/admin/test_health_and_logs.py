"""/healthz reports the database and the scheduler; JSON log lines carry the ids and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logging_setup import configure_logging
from bot.store.db import create_engine
from tests.admin.conftest import ADMIN_DM, BASE
from tests.harness import message_event, running_lukas
from tests.helpers import free_port
from tests.standins.openai_api import LLMFault

ENABLED = {"images": {"enabled": True, "schedule": {"cron": "0 3 1 1 *", "timezone": "UTC"}}}


async def test_healthz_reports_scheduler_and_goes_503_without_the_database(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides={**BASE, **ENABLED}) as h:
        await h.wait_until(lambda: h.lukas.images.next_run() is not None)
        async with h.http.get(f"{h.url}/healthz") as response:
            assert response.status == 200
            body = await response.json()
        assert body["ok"] is True and body["database"] == "ok" and body["scheduler"] == "running"
        assert body["next_image_run"].startswith(f"{h.lukas.images.next_run().year}-01-01T03:00:00")
        assert isinstance(body["uptime_seconds"], int) and body["version"]

        good = h.lukas.services.engine
        dead = create_engine(f"postgresql://lukas:secret-pw@127.0.0.1:{free_port()}/lukas")
        h.lukas.services.engine = dead
        try:
            async with h.http.get(f"{h.url}/healthz") as response:
                assert response.status == 503
                text = await response.text()
            body = json.loads(text)
            assert body["ok"] is False and body["database"] == "unreachable" and body["scheduler"] == "running"
            assert "secret-pw" not in text
        finally:
            h.lukas.services.engine = good
            await dead.dispose()

        h.lukas.images.stop()
        async with h.http.get(f"{h.url}/healthz") as response:
            body = await response.json()
        assert response.status == 200 and body["scheduler"] == "stopped" and body["next_image_run"] is None


async def test_healthz_says_disabled_when_images_are_off(tmp_path: Path, database_url: str) -> None:
    async with running_lukas(tmp_path, database_url, overrides=BASE) as h:
        async with h.http.get(f"{h.url}/healthz") as response:
            body = await response.json()
        assert body["scheduler"] == "disabled" and body["next_image_run"] is None


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Lukas's own JSON logging (as `lukas run` sets it up) into a buffer; the test's handlers restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    configure_logging(level="DEBUG", json_lines=True, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


async def test_json_logs_carry_ids_and_no_secrets(tmp_path: Path, database_url: str, json_logs: io.StringIO) -> None:
    bot_token, api_key = "xoxb-test-token", "sk-test-key-000000000000"  # what the harness runs Lukas with
    async with running_lukas(tmp_path, database_url, overrides=BASE) as h:
        await h.send(message_event(text="hello"), event_id="EvJSON0001")
        await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 1)
        await h.settle()
        # The provider rejects the key and echoes it back, as OpenAI does: it must not reach the logs or the DM.
        h.llm.faults.append(LLMFault(status=401, code="invalid_api_key", message=f"Incorrect API key: {api_key}"))
        await h.send(message_event(text="and now?"), event_id="EvJSON0002")
        await h.wait_until(lambda: len(h.slack.posted_texts("D0DM")) == 2)
        await h.settle()
        await h.wait_until(lambda: len(h.slack.posted_texts(ADMIN_DM)) == 1)
        dm = h.slack.posted_texts(ADMIN_DM)[0]
        assert api_key not in dm and "[redacted]" in dm

    text = json_logs.getvalue()
    entries = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert bot_token not in text and api_key not in text and "test-signing-secret" not in text
    accepted = [e for e in entries if e["message"].startswith("accepted a message")]
    assert [e["event_id"] for e in accepted] == ["EvJSON0001", "EvJSON0002"]
    assert all(isinstance(e["conversation_id"], int) for e in accepted)
    about_messages = [e for e in entries if e.get("event_id") in ("EvJSON0001", "EvJSON0002")]
    assert any(e["logger"] == "bot.llm.gateway" for e in about_messages)  # the model call's lines too
    assert all("conversation_id" in e for e in about_messages if e["logger"] != "bot.chat.service")
    assert any("[redacted]" in e["message"] for e in entries)
