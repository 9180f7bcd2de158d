"""The intake's promises as properties: any body up to the cap costs little CPU, nothing reads a body before its
signature verifies, and the depth scan is exact on JSON and never lets a RecursionError through."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any
from unittest import mock

import aiohttp
from hypothesis import example, given
from hypothesis import strategies as st

from bot.slack import intake_logic, server
from bot.slack.intake_logic import MAX_BODY_BYTES, MAX_JSON_DEPTH, json_depth, refusal
from tests.guards.test_intake_server import serving
from tests.harness import SIGNING_SECRET, sign

NOW = 1_750_000_000
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CONTENT_TYPES = st.sampled_from([JSON, FORM, "", "text/plain", f"{FORM}; charset=utf-8"])

# What the old string-skipping regex choked on, and what else a scanner can trip over: quotes, escapes, brackets.
FRAGMENTS = [b"{", b"}", b"[", b"]", b'"', b"\\", b'\\"', b"\\\\", b'"a":', b",", b"a", b" ", b"1", b"\xff", b"\x00"]
FRAGMENTS += [b"%5B", b"%22", b"&", b"payload=", b"\\u005c", b'""', b"\n"]
_NESTED = [
    shape
    for depth in (1, 2, 10, 63, 64, 65, 100, 150)
    for shape in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, b'["' * depth, b"[" * depth)
]
# Every fragment, every pair of fragments, nested shapes: one draw each, so 2,000 examples take seconds.
UNITS = st.sampled_from(FRAGMENTS + [a + b for a in FRAGMENTS for b in FRAGMENTS] + _NESTED) | st.binary(
    min_size=1, max_size=6
)
HEADS = [b"", b'{"a":"', b"payload=", b'{"a":"\\', b"[" * 70, b'"']
TAILS = [b"", b'"', b'"}', b"]" * 70, b"}", b"\\"]
SIZES = st.integers(4, 20).map(lambda exponent: 1 << exponent)  # 16 B to 1 MiB, as many small as large


def bodies(max_size: int = MAX_BODY_BYTES) -> st.SearchStrategy[bytes]:
    """A head, one unit repeated up to a size, a tail: `{"a":"` + `\\"` * n, [[[…]]] over and over, and so on."""
    return st.builds(
        lambda head, unit, tail, size: (
            head + unit * (max(min(size, max_size) - len(head) - len(tail), 0) // len(unit)) + tail
        )[:max_size],
        st.sampled_from(HEADS),
        UNITS,
        st.sampled_from(TAILS),
        SIZES,
    )


def signed(body: bytes, *, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    return sign(body, secret=secret, timestamp=int(timestamp))["X-Slack-Signature"]


GARBAGE = [" 1750000000", "1750000000 ", "+1750000000", "1_750_000_000", "1.75e9", "١٧٥٠٠٠٠٠٠٠", "9" * 5000, "-0"]
GARBAGE += ["v0=" + "é" * 64, "v0=" + "A" * 64, "v1=" + "0" * 64, "v0=" + "0" * 63, "v0=" + "0" * 65, "\u2028", "nan"]


def _v0(raw: bytes) -> str:
    return "v0=" + raw.hex()


_text = st.sampled_from(GARBAGE) | st.text(max_size=8)
# How a request's signature headers fail to be Slack's for its body, drawn apart from the body (cheaper to draw).
FORGERIES = st.tuples(
    st.integers(-300, 300),
    st.one_of(
        st.tuples(st.just("garbage"), _text | st.integers(-(10**15), 10**15).map(str), _text),
        st.tuples(st.just("random signature"), st.binary(min_size=32, max_size=32).map(_v0)),
        st.tuples(st.just("other secret"), _text),
        st.tuples(st.just("other body"), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("other time"), st.integers(1, 10)),
        st.tuples(st.just("stale"), st.integers(301, 10**9)),
        st.tuples(st.just("missing"), st.booleans()),
    ),
)


def forged_headers(forgery: tuple[int, tuple[Any, ...]], body: bytes) -> dict[str, str]:
    """Signature headers that are not Slack's for this body: garbage, missing, stale, or signed for something else."""
    offset, (kind, *how) = forgery
    fresh = str(NOW + offset)
    if kind == "garbage":
        return {"timestamp": how[0], "signature": how[1]}
    if kind == "random signature":
        return {"timestamp": fresh, "signature": how[0]}
    if kind == "other secret":
        return {"timestamp": fresh, "signature": signed(body, timestamp=fresh, secret=how[0] + "x")}
    if kind == "other body":
        return {"timestamp": fresh, "signature": signed(body + how[0], timestamp=fresh)}
    if kind == "other time":
        return {"timestamp": fresh, "signature": signed(body, timestamp=str(int(fresh) + how[0]))}
    if kind == "stale":
        old = str(NOW - how[0])
        return {"timestamp": old, "signature": signed(body, timestamp=old)}
    return {"timestamp": "" if how[0] else fresh, "signature": ""}


WORST = {
    "unterminated escaped quotes": b'{"a":"' + b'\\"' * ((MAX_BODY_BYTES - 6) // 2),
    "quotes": b'"' * MAX_BODY_BYTES,
    "quoted brackets": b'"["[' * (MAX_BODY_BYTES // 4),
    "64 deep, over and over": (b"[" * 64 + b"]" * 64) * (MAX_BODY_BYTES // 128),
    "65 deep": b"[" * (MAX_BODY_BYTES // 2) + b"]" * (MAX_BODY_BYTES // 2),
    "empty arrays": b"[]" * (MAX_BODY_BYTES // 2),
    "backslashes": b"\\" * MAX_BODY_BYTES,
}


UNSIGNED = (0, ("missing", False))


@given(body=bodies(), forgery=st.none() | FORGERIES, content_type=CONTENT_TYPES)
@example(body=WORST["unterminated escaped quotes"], forgery=UNSIGNED, content_type=JSON)
@example(body=WORST["unterminated escaped quotes"], forgery=None, content_type=JSON)
@example(body=WORST["quotes"], forgery=None, content_type=JSON)
@example(body=WORST["quoted brackets"], forgery=None, content_type=JSON)
@example(body=WORST["64 deep, over and over"], forgery=None, content_type=JSON)
@example(body=WORST["65 deep"], forgery=None, content_type=JSON)
@example(body=WORST["empty arrays"], forgery=None, content_type=JSON)
@example(body=WORST["backslashes"], forgery=None, content_type=JSON)
def test_any_body_up_to_the_cap_costs_under_50_ms_of_cpu(
    body: bytes, forgery: tuple[int, tuple[Any, ...]] | None, content_type: str
) -> None:
    """Signed (forgery None) or not. A signed form body is exempt: only Slack can sign one, and Bolt parses every
    field of it anyway, as parse_qsl does here."""
    if forgery is None:
        content_type = JSON if FORM in content_type else content_type
        headers = {"timestamp": str(NOW), "signature": signed(body, timestamp=str(NOW))}
    else:
        headers = forged_headers(forgery, body)
    started = time.thread_time()
    refused = refusal(body=body, content_type=content_type, secret=SIGNING_SECRET, now=NOW, **headers)
    spent = time.thread_time() - started
    assert spent < 0.05, f"{spent * 1000:.0f} ms of CPU for {len(body)} bytes"
    assert forgery is None or (refused is not None and refused.status == 401)


def _never(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("the body was read before its signature verified")


@given(body=bodies(max_size=64 * 1024), forgery=FORGERIES, content_type=CONTENT_TYPES)
def test_nothing_reads_a_body_before_its_signature_verifies(
    body: bytes, forgery: tuple[int, tuple[Any, ...]], content_type: str
) -> None:
    headers = forged_headers(forgery, body)
    with (
        mock.patch.object(intake_logic, "shape_problem", _never),
        mock.patch.object(intake_logic, "json_depth", _never),
        mock.patch.object(intake_logic, "parse_qsl", _never),
    ):
        refused = refusal(body=body, content_type=content_type, secret=SIGNING_SECRET, now=NOW, **headers)
    assert refused is not None and refused.status == 401


def test_nothing_reads_a_body_before_its_signature_verifies_on_the_server() -> None:
    """The same through the real aiohttp server: for forged requests neither the shape check, nor json, nor
    Bolt's request parsing or dispatch, nor the direct intake runs; a signed request (last) reaches them."""
    shape = mock.Mock(wraps=intake_logic.shape_problem)
    parsed = mock.Mock(wraps=json)
    to_bolt = mock.AsyncMock(wraps=server.to_bolt_request)
    with (
        asyncio.Runner() as loop,
        mock.patch.object(intake_logic, "shape_problem", shape),
        mock.patch.object(server, "json", parsed),
        mock.patch.object(server, "to_bolt_request", to_bolt),
        mock.patch.object(server, "time", mock.Mock(time=lambda: float(NOW))),
    ):
        served_cm = serving()
        served = loop.run(served_cm.__aenter__())
        http = loop.run(_session())

        async def post(body: bytes, content_type: str, headers: dict[str, str]) -> int:
            sent = {  # what an HTTP client can send: no control characters
                "X-Slack-Request-Timestamp": "".join(filter(str.isprintable, headers["timestamp"])),
                "X-Slack-Signature": "".join(filter(str.isprintable, headers["signature"])),
            }
            async with http.post(
                f"{served.url}/slack/events", data=body, headers={**sent, "Content-Type": content_type}
            ) as response:
                return response.status

        @given(body=bodies(max_size=16 * 1024), forgery=FORGERIES, content_type=CONTENT_TYPES)
        def forged_is_refused_unread(body: bytes, forgery: tuple[int, tuple[Any, ...]], content_type: str) -> None:
            assert loop.run(post(body, content_type, forged_headers(forgery, body))) == 401

        try:
            forged_is_refused_unread()
            assert shape.call_count == parsed.loads.call_count == to_bolt.await_count == 0
            assert served.bolt.dispatched == [] and served.taken == []
            ok = b'{"type": "event_callback", "event": {"type": "reaction_added"}}'
            assert loop.run(post(ok, JSON, {"timestamp": str(NOW), "signature": signed(ok, timestamp=str(NOW))})) == 200
            assert shape.call_count == parsed.loads.call_count == 1 and served.taken == [json.loads(ok)]
        finally:
            loop.run(http.close())
            loop.run(served_cm.__aexit__(None, None, None))


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


_tricky_text = st.text(st.sampled_from('[]{}"\\ a/\u2028é\x00'), max_size=8) | st.text(max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_tricky_text, inner, max_size=4),
    max_leaves=16,
)


@given(value=JSON_VALUES, limit=st.integers(0, 12), ascii_only=st.booleans(), indent=st.sampled_from([None, 0, 2]))
def test_json_depth_is_exact_for_json(value: Any, limit: int, ascii_only: bool, indent: int | None) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    assert json_depth(raw, limit=limit) == min(_depth(value), limit + 1)


@given(body=bodies(max_size=32 * 1024) | JSON_VALUES.map(lambda value: json.dumps(value).encode()))
def test_a_body_that_passes_the_depth_check_never_overflows_the_parser(body: bytes) -> None:
    if json_depth(body) > MAX_JSON_DEPTH:
        return
    with contextlib.suppress(ValueError):  # not JSON: a 400. A RecursionError would be a 500.
        json.loads(body.decode("utf-8"))  # as bot/slack/server.py parses a direct event
