"""Intake on the real aiohttp server: garbage headers, slow senders, and a freeze that must not come back."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.slack.intake_logic import MAX_BODY_BYTES
from bot.slack.server import build_web_app, start_http
from tests.harness import SIGNING_SECRET, envelope, message_event, running_lukas, sign

PARTIAL_BODY = (
    b'POST /slack/events HTTP/1.1\r\nHost: lukas\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{"a":'
)


class RecordingBolt:
    """Stands in for Bolt's dispatch: records what reached it."""

    def __init__(self) -> None:
        self.dispatched: list[Any] = []

    async def async_dispatch(self, request: Any) -> BoltResponse:
        self.dispatched.append(request)
        return BoltResponse(status=200, body="")


class Served:
    def __init__(self, runner: web.AppRunner, bolt: RecordingBolt, taken: list[Any]) -> None:
        self.runner, self.bolt, self.taken = runner, bolt, taken
        self.port = int(runner.addresses[0][1])
        self.url = f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def serving(**options: float) -> AsyncIterator[Served]:
    """build_web_app + start_http as bot/runtime.py runs them, with a recording Bolt and direct intake."""
    bolt = RecordingBolt()
    taken: list[Any] = []

    async def health() -> tuple[bool, dict[str, Any]]:
        return True, {}

    async def direct(payload: Any) -> bool:
        taken.append(payload)
        return True

    body_seconds = options.pop("body_seconds", 10.0)
    app = build_web_app(
        cast(AsyncApp, bolt), health=health, signing_secret=SIGNING_SECRET, direct=direct, body_seconds=body_seconds
    )
    runner = await start_http(app, host="127.0.0.1", port=0, **options)
    try:
        yield Served(runner, bolt, taken)
    finally:
        await runner.cleanup()


async def _closed_by_server(reader: asyncio.StreamReader) -> float:
    """Seconds until the server closes the connection (EOF or reset)."""
    started = time.perf_counter()
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    return time.perf_counter() - started


async def _slow_senders(port: int, count: int, *, declared: int = 1000) -> list[tuple[Any, Any]]:
    """`count` connections that send their headers and the first bytes of a body, then nothing more."""
    connections = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PARTIAL_BODY % declared)
        await writer.drain()
        connections.append((reader, writer))
    return connections


def _warnings(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if needle in record.getMessage()]


async def test_garbage_signature_headers_get_401_and_one_short_line(caplog: pytest.LogCaptureFixture) -> None:
    """A timestamp int() cannot read was a 500 with a traceback; so were a non-ASCII signature and a body that is
    not UTF-8 (slack_sdk's verifier decodes it). Each is now a 401 and one line, without the header's value."""
    body = json.dumps(envelope(message_event(text="hi"))).encode()
    good = sign(body)
    cases: list[tuple[bytes, dict[str, str]]] = [
        (body, {**good, "X-Slack-Request-Timestamp": stamp})
        for stamp in ("soon", "1e9", " 1700000000", "1_700_000_000", "+1700000000", "١٧٠٠٠٠٠٠٠٠", "9" * 5000)
    ]
    cases.append((body, {**good, "X-Slack-Signature": "v0=" + "é" * 64}))
    cases.append((b"\xff\xfe{}", {**good, "X-Slack-Signature": "v0=" + "0" * 64}))
    caplog.set_level(logging.INFO)
    async with serving() as served, aiohttp.ClientSession() as http:
        for raw, headers in cases:
            async with http.post(f"{served.url}/slack/events", data=raw, headers=headers) as response:
                assert response.status == 401, headers
        assert served.taken == [] and served.bolt.dispatched == []
    rejected = _warnings(caplog, "rejected POST /slack/events")
    assert len(rejected) == len(cases)
    assert all(len(line) < 200 and "1700000000" not in line and "soon" not in line for line in rejected)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]


async def test_a_body_that_stops_arriving_is_cut_at_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with serving(body_seconds=0.5) as served:
        connections = await _slow_senders(served.port, 20)
        closed_after = await asyncio.wait_for(
            asyncio.gather(*(_closed_by_server(reader) for reader, _ in connections)), timeout=10
        )
        assert all(0.4 < seconds < 3 for seconds in closed_after), closed_after
        async with aiohttp.ClientSession() as http, http.get(f"{served.url}/healthz") as response:
            assert response.status == 200
        for _, writer in connections:
            writer.close()
    cut = _warnings(caplog, "cut POST /slack/events (1000 bytes declared): body not complete within 0.5 s")
    assert len(cut) == 20
    assert served.taken == [] and served.bolt.dispatched == []


async def test_headers_that_never_finish_are_closed_at_the_idle_deadline() -> None:
    async with serving(idle_seconds=0.5) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: lukas\r\n")
        await writer.drain()
        closed_after = await asyncio.wait_for(_closed_by_server(reader), timeout=10)
        assert 0.4 < closed_after < 3
        writer.close()


async def test_slow_senders_do_not_hold_the_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    """20 connections sending a body slowly held the shutdown for aiohttp's 60 s grace; oversized ones were read
    for 10 s more. Both are cut as the server stops (runner.shutdown(), then cleanup(), as bot/runtime.py does)."""
    caplog.set_level(logging.INFO)
    async with serving() as served:
        slow = await _slow_senders(served.port, 20)
        oversized = await _slow_senders(served.port, 5, declared=MAX_BODY_BYTES * 4)
        await asyncio.sleep(0.2)  # every handler is waiting for its body
        started = time.perf_counter()
        await served.runner.shutdown()
        await served.runner.cleanup()
        stopped_after = time.perf_counter() - started
        closed_after = await asyncio.wait_for(
            asyncio.gather(*(_closed_by_server(reader) for reader, _ in slow + oversized)), timeout=10
        )
        for _, writer in slow + oversized:
            writer.close()
    assert stopped_after < 3, stopped_after
    assert max(closed_after) < 3
    assert len(_warnings(caplog, "body still arriving as Lukas stops")) == 20
    assert len(_warnings(caplog, f"body over {MAX_BODY_BYTES} bytes")) == 5


def worst_case_unsigned_body() -> bytes:
    """1 MiB that ends in an unterminated string of 20,000 escaped quotes: the shape that made the old
    string-skipping regex quadratic (11 s for those 40 KB, all of it on the event loop)."""
    tail = b'","text":"' + b'\\"' * 20_000
    head = b'{"token":"'
    return head + b"a" * (MAX_BODY_BYTES - len(head) - len(tail)) + tail


async def test_health_answers_while_a_worst_case_unsigned_body_is_refused(tmp_path: Path, database_url: str) -> None:
    body = worst_case_unsigned_body()
    assert len(body) == MAX_BODY_BYTES
    async with running_lukas(tmp_path, database_url) as h:

        async def healthz() -> tuple[float, int]:
            started = time.perf_counter()
            async with h.http.get(f"{h.url}/healthz") as response:
                return time.perf_counter() - started, response.status

        posting = asyncio.ensure_future(h.post_raw(body, {"Content-Type": "application/json"}))
        answers = [await healthz()]
        while not posting.done():  # one /healthz after another, for as long as the body is being handled
            answers.append(await healthz())
        status, _ = await posting
        assert status == 401
        slowest = max(seconds for seconds, _ in answers)
        assert slowest < 1, f"/healthz waited {slowest:.1f} s"
        assert {status for _, status in answers} == {200}
        # Signed, it is not JSON; 1 MiB of arrays 64 deep in one more array is too deep: both 400, at once.
        deep = b"[" * 64 + b"]" * 64
        nested = b"[" + b",".join([deep] * ((MAX_BODY_BYTES - 2) // (len(deep) + 1))) + b"]"
        for signed in (body, nested):
            cpu = time.thread_time()  # this thread runs the client and the server
            status, _ = await h.post_raw(signed, sign(signed))
            assert status == 400
            assert time.thread_time() - cpu < 0.5
        await h.settle()
        assert h.slack.calls_to("chat.postMessage") == [] and await h.messages() == []
