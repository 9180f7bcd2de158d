"""Spot things in a reply that look like credentials, so Lukas never posts one into a channel."""

from __future__ import annotations

import math
import re
from collections import Counter

_BOUNDARY = r"(?<![A-Za-z0-9_\-])"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("openai_key", re.compile(_BOUNDARY + r"sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{20,}")),
    ("slack_token", re.compile(_BOUNDARY + r"xox[a-z]-[A-Za-z0-9\-]{10,}")),
    ("slack_app_token", re.compile(_BOUNDARY + r"xapp-\d+-[A-Za-z0-9\-]{10,}")),
    ("slack_webhook", re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{10,}")),
    ("aws_access_key", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])")),
    ("github_token", re.compile(_BOUNDARY + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("google_api_key", re.compile(_BOUNDARY + r"AIza[0-9A-Za-z_\-]{35}")),
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.*?-----END [A-Z ]*PRIVATE KEY-----|.*)", re.DOTALL),
    ),
)
# `api_key = "..."`, `"secret": "..."`, `password: ...`: only the value is redacted, and only if it looks random.
_ASSIGNMENT = re.compile(
    r"(?i)(?<![a-z0-9])(?:api[_\- ]?key|apikey|access[_\- ]?key|secret(?:[_\- ]?key)?|client[_\- ]?secret|"
    r"(?:access|auth|bearer|refresh)[_\- ]?token|token|passw(?:or)?d)\b[\"']?\s*[:=]\s*[\"']?"
    r"(?P<value>[^\s\"'`,;<>]{16,})"
)
_BEARER = re.compile(r"(?i)\bbearer\s+(?P<value>[A-Za-z0-9_\-+/=.~]{20,})")
MIN_ENTROPY_BITS = 3.0  # per character; English words sit lower, random keys well above


def shannon_entropy(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def looks_random(value: str) -> bool:
    """A long mix of letters and digits with high entropy: a key, not a word or a number."""
    has_letter = any(c.isalpha() for c in value)
    has_digit = any(c.isdigit() for c in value)
    return has_letter and has_digit and shannon_entropy(value) >= MIN_ENTROPY_BITS


def find_secrets(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every credential-looking span, sorted and merged."""
    if not text:
        return []
    found: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        found += [(m.start(), m.end(), kind) for m in pattern.finditer(text)]
    for pattern in (_ASSIGNMENT, _BEARER):
        for match in pattern.finditer(text):
            if looks_random(match["value"]):
                found.append((match.start("value"), match.end("value"), "credential"))
    found.sort()
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in found:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, kind))
    return merged


def redact(text: str, spans: list[tuple[int, int, str]], *, replacement: str) -> str:
    parts, last = [], 0
    for start, end, _kind in spans:
        parts += [text[last:start], replacement]
        last = end
    parts.append(text[last:])
    return "".join(parts)
