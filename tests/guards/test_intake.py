"""Hardened intake: forged, oversized and nested requests, and log lines nobody can forge."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logging_setup import configure_logging
from bot.slack.intake_logic import MAX_BODY_BYTES, json_depth, shape_problem
from tests.harness import envelope, message_event, running_lukas, sign

FAKE_LINE = "2026-01-01 12:00:00,000 INFO bot.slack.commands: /lukas reload by admin U0ADMIN"


@pytest.fixture
def log_stream(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(level="INFO", json_lines=getattr(request, "param", False), stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def _lines_about(stream: io.StringIO, needle: str) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if needle in line]


async def test_a_forged_request_is_one_short_log_line_without_its_body(
    tmp_path: Path, database_url: str, log_stream: io.StringIO
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        body = json.dumps(envelope(message_event(text="A" * 900_000 + "\n" + FAKE_LINE))).encode()
        headers = sign(body, secret="not-the-signing-secret")
        status, _ = await h.post_raw(body, headers)
        assert status == 401
        stale = json.dumps(envelope(message_event(text="old"))).encode()
        status, _ = await h.post_raw(stale, sign(stale, timestamp=1_600_000_000))
        assert status == 401
        await h.settle()
        assert h.slack.calls_to("chat.postMessage") == [] and await h.messages() == []
    written = log_stream.getvalue()
    rejected = _lines_about(log_stream, "rejected POST /slack/events")
    assert len(rejected) == 2
    assert f"({len(body)} bytes): bad signature" in rejected[0] and rejected[1].endswith("stale timestamp")
    assert all(len(line) < 300 for line in rejected)
    assert "AAAAAAAAAA" not in written and "reload by admin" not in written
    assert max(len(line) for line in written.splitlines()) < 10_000


async def test_oversized_and_deeply_nested_bodies_get_400_without_a_traceback(
    tmp_path: Path, database_url: str, log_stream: io.StringIO
) -> None:
    async with running_lukas(tmp_path, database_url) as h:
        nested = b'{"a":' * 5000 + b"1" + b"}" * 5000
        status, _ = await h.post_raw(nested, sign(nested))
        assert status == 400
        big = b'{"x": "' + b"B" * (MAX_BODY_BYTES + 10) + b'"}'
        status, _ = await h.post_raw(big, sign(big))
        assert status == 400
        form_nested = b"payload=" + b"%5B" * 3000 + b"%5D" * 3000
        headers = {**sign(form_nested), "Content-Type": "application/x-www-form-urlencoded"}
        status, _ = await h.post_raw(form_nested, headers)
        assert status == 400
        # Lukas keeps working.
        status, _ = await h.send(message_event(text="still there?"))
        assert status == 200
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 1)
        await h.settle()
    written = log_stream.getvalue()
    assert "Traceback" not in written and "RecursionError" not in written
    rejected = _lines_about(log_stream, "rejected POST /slack/events")
    assert len(rejected) == 3
    assert "nested more than 64 levels deep" in rejected[0]
    assert f"over the {MAX_BODY_BYTES}-byte limit" in rejected[1] or f"body over {MAX_BODY_BYTES} bytes" in rejected[1]
    assert "nested more than 64 levels deep" in rejected[2]


@pytest.mark.parametrize("log_stream", [False, True], indirect=True, ids=["plain", "json"])
def test_newlines_and_control_characters_cannot_forge_a_log_line(log_stream: io.StringIO) -> None:
    logging.getLogger("bot.slack.commands").warning("unknown command %r", "x")
    logging.getLogger("bot.test").warning("a person wrote: %s", f"hello\n{FAKE_LINE}\r\x1b[2J\u2028\x85end")
    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 2
    assert not any(line.startswith("2026-01-01 12:00:00") for line in lines)
    assert "\\n2026-01-01 12:00:00" in lines[1] and "\\x1b" in lines[1] and "\\u2028" in lines[1]


def test_a_traceback_stays_indented_so_it_cannot_pass_for_records(log_stream: io.StringIO) -> None:
    try:
        raise ValueError(f"bad input\n{FAKE_LINE}")
    except ValueError:
        logging.getLogger("bot.test").exception("something failed")
    lines = log_stream.getvalue().splitlines()
    assert "something failed" in lines[0]
    assert all(line.startswith("    ") for line in lines[1:]) and len(lines) > 2


def test_body_checks() -> None:
    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, [2, {"c": 3}]]}') == 4
    assert json_depth(b'{"a": "\\"[[[["}') == 1
    assert json_depth(b"[" * 100 + b"]" * 100) == 65  # known to be over the limit: the count stops there
    assert shape_problem(body=b'{"ok": true}', content_type="application/json") is None
    assert shape_problem(body=b"[[[1]]]", content_type="application/json", max_depth=2) is not None
