"""Recognising image bytes, whatever the server claims. Pure."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageKind:
    extension: str
    mime: str


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", ImageKind("png", "image/png")),
    (b"\xff\xd8\xff", ImageKind("jpg", "image/jpeg")),
    (b"GIF87a", ImageKind("gif", "image/gif")),
    (b"GIF89a", ImageKind("gif", "image/gif")),
)


def sniff(data: bytes) -> ImageKind | None:
    """PNG, JPEG, GIF or WebP by their magic bytes; None for anything else (HTML error pages, JSON, noise)."""
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageKind("webp", "image/webp")
    return None


def decode_b64(text: object) -> bytes:
    """Strict base64 (standard alphabet, whitespace allowed). Raises ValueError with a short reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the response's b64_json is empty")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the response's b64_json is not valid base64") from None


def describe_bytes(data: bytes) -> str:
    """A short, safe description of unrecognised bytes for an admin-readable error."""
    head = data[:40].decode("utf-8", "replace")
    printable = "".join(char if char.isprintable() else "?" for char in head)
    return f"{len(data)} bytes starting with {printable!r}"
