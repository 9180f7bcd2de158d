"""What /slack/events refuses before Bolt sees a request. Pure: bytes and headers in, a refusal (or None) out.

The checks run cheapest-first and nothing in the body is read before the signature verifies: the size (1 MiB),
then the two signature headers (a timestamp of ASCII digits within five minutes, a `v0=` signature of 64 hex
digits), then the HMAC over the raw bytes, and only then the body's shape. A forger therefore costs one SHA-256
pass at most, and garbage headers are a 401, never an exception.

Slack's own bodies are small (event payloads of a few KB; a message's text is capped at 40,000 characters) and
shallow (blocks nest about ten levels). A signed body nested deeper than 64 levels is answered 400, never parsed
into a RecursionError.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from itertools import accumulate
from urllib.parse import parse_qsl

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_CLOCK_SKEW_SECONDS = 60 * 5  # Slack's own replay window

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
# json_depth's byte tables: brackets become "[" / "]" and everything but brackets and quotes goes.
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_STEPS = bytes.maketrans(b"[]", b"\x01\xff")  # +1 / -1 as signed bytes


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 400 (not a body Slack sends) or 401 (not signed by Slack)
    reason: str  # one short line for the log; never the body or a header's value


def refusal(
    *,
    body: bytes,
    content_type: str,
    timestamp: str,
    signature: str,
    secret: str,
    now: float,
    max_bytes: int = MAX_BODY_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Refusal | None:
    """Why this request is refused, or None; size, headers and signature come before anything parses the body."""
    if len(body) > max_bytes:
        return Refusal(400, f"body of {len(body)} bytes is over the {max_bytes}-byte limit")
    problem = header_problem(timestamp=timestamp, signature=signature, now=now)
    if problem is not None:
        return Refusal(401, problem)
    if not signature_matches(body=body, timestamp=timestamp, signature=signature, secret=secret):
        return Refusal(401, "bad signature")
    problem = shape_problem(body=body, content_type=content_type, max_depth=max_depth)
    return None if problem is None else Refusal(400, problem)


def header_problem(*, timestamp: str, signature: str, now: float) -> str | None:
    """Why the signature headers cannot be Slack's (missing, malformed, stale), or None. Never raises."""
    if not timestamp or not signature:
        return "no Slack signature headers"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "timestamp header is not a number"
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        return "stale timestamp"
    if not _SIGNATURE.fullmatch(signature):
        return "malformed signature header"
    return None


def signature_matches(*, body: bytes, timestamp: str, signature: str, secret: str) -> bool:
    """Slack's v0 signature over the raw bytes (slack_sdk's verifier decodes the body first, so non-UTF-8 bytes
    raised there); `signature` must already have passed header_problem (hmac.compare_digest wants ASCII)."""
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v0={digest}", signature)


def shape_problem(*, body: bytes, content_type: str, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a signed body is not one Slack would send (nested too deeply), or None."""
    if "application/x-www-form-urlencoded" in content_type:
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        depth = max(
            (json_depth(value.encode(), limit=max_depth) for key, value in fields if key == "payload"), default=0
        )
    else:
        depth = json_depth(body, limit=max_depth)
    if depth > max_depth:
        return f"JSON nested more than {max_depth} levels deep"
    return None


def json_depth(raw: bytes, *, limit: int = MAX_JSON_DEPTH) -> int:
    """Deepest nesting of [] and {} outside JSON strings (or `limit + 1` once it is known to be deeper), in linear
    time whatever the bytes: no regex that can backtrack and no per-byte Python loop, only C-level passes.

    1. Drop escapes: `\\\\` pairs left to right, then `\\"`. Every quote left is then a string delimiter.
    2. Keep only quotes and brackets; drop `""` pairs (an even number of quotes, so what is inside or outside a
       string does not change), then the odd pieces between quotes: the strings.
    3. The depth is the largest running sum of +1 per opening and -1 per closing bracket. Removing the innermost
       `[]` pairs first (one pass) lowers it by exactly one when there were any, and often shortens the sum a
       lot; a run of more than `limit` opening brackets settles it at once.
    For valid JSON this is its exact depth. For anything else it is at least how deep json's parser recurses
    before it meets the first error, so a body that passes never ends in a RecursionError.
    """
    kept = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in kept:
        kept = b"".join(kept.split(b'"')[::2])
    reduced = kept.replace(b"[]", b"")
    innermost = 1 if len(reduced) < len(kept) else 0
    if b"[" * (limit + 1) in reduced:
        return limit + 1
    deepest = max(accumulate(memoryview(reduced.translate(_STEPS)).cast("b")), default=0)
    return min(innermost + max(deepest, 0), limit + 1)
