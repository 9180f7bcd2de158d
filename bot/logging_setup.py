"""Logging: plain or JSON lines, with context ids, and a filter that scrubs anything shaped like a secret."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from typing import Any, TextIO

event_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)
conversation_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("conversation_id", default=None)

_SECRET_PATTERNS = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|sk-[A-Za-z0-9_-]{12,}|AKIA[0-9A-Z]{16}"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@))"
)


def scrub(text: str) -> str:
    return _SECRET_PATTERNS.sub("[redacted]", text)


class ContextFilter(logging.Filter):
    """Adds event/conversation ids and removes secrets from every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.event_id = event_id_var.get()
        record.conversation_id = conversation_id_var.get()
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = scrub(message), None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = []
        if event_id := getattr(record, "event_id", None):
            ids.append(f"event={event_id}")
        if conversation_id := getattr(record, "conversation_id", None):
            ids.append(f"conversation={conversation_id}")
        record.ids = (" [" + " ".join(ids) + "]") if ids else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("event_id", "conversation_id"):
            if getattr(record, key, None):
                entry[key] = getattr(record, key)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, level: str = "INFO", json_lines: bool = False, stream: TextIO | None = None) -> None:
    """Replace the root handlers with one (stderr by default); called at start and when `logging:` is reloaded."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in (
        "aiohttp.access",
        "httpx",
        "httpx2",
        "httpcore",
        "apscheduler",
        "openai._base_client",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
