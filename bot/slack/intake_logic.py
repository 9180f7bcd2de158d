"""What /slack/events refuses before Bolt sees a request. Pure: bytes and headers in, a reason (or None) out.

Slack's own bodies are small (event payloads of a few KB; a message's text is capped at 40,000 characters) and
shallow (blocks nest about ten levels). Anything far beyond that is forged or broken, and is answered 400 with a
one-line log, never parsed into a RecursionError or written whole into the logs.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes) -> int:
    """Deepest nesting of [] and {} in JSON text (strings skipped): a linear scan, no parsing, no recursion."""
    stripped = _STRING.sub(b"", raw) if b'"' in raw else raw
    depth = deepest = 0
    for bracket in _BRACKET.findall(stripped):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)
    return deepest


def body_problem(
    *, body: bytes, content_type: str, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> str | None:
    """Why the body is not one Slack would send (too big, nested too deeply), or None."""
    if len(body) > max_bytes:
        return f"body of {len(body)} bytes is over the {max_bytes}-byte limit"
    if "application/x-www-form-urlencoded" in content_type:
        try:
            fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        except ValueError:
            return "form body that cannot be parsed"
        depth = max((json_depth(value.encode()) for key, value in fields if key == "payload"), default=0)
    else:
        depth = json_depth(body)
    if depth > max_depth:
        return f"JSON nested {depth} levels deep (limit {max_depth})"
    return None
