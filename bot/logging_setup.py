"""Logging: plain or JSON lines, with context ids, and a filter that scrubs anything shaped like a secret."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
from typing import Any, TextIO

from bot.secrets_logic import scrub as _scrub_secrets

event_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)
conversation_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("conversation_id", default=None)

# Newlines and other control characters (C0, DEL, C1, Unicode line/paragraph separators) would let text from
# outside (a forged request, a person's message) start a fake log line: they are written escaped instead.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})
MAX_LINE_CHARS = 8_000  # a log line longer than this is cut (a forged 2 MB body must not become a 2 MB line)


def scrub(text: str) -> str:
    """text with every secret replaced (bot.secrets_logic: the same detector as the reply policy)."""
    return _scrub_secrets(text)


def one_line(text: str, *, limit: int = MAX_LINE_CHARS) -> str:
    """text as one log line: control characters escaped, cut at `limit` characters."""
    if len(text) > limit:
        text = text[:limit] + f"… [{len(text) - limit} more characters]"
    return text.translate(_CONTROL)


def _traceback_lines(text: str) -> str:
    """A traceback stays readable on several lines, each indented, so none can pass for a record of its own."""
    return "\n".join("    " + one_line(line) for line in text.splitlines())


class StoppedByShutdown(logging.Filter):
    """A task the shutdown cancels makes some libraries log the CancelledError as an error with a traceback
    (APScheduler's "raised an exception", SQLAlchemy's "Exception during reset or similar" for the connection the
    task held). A stop is not an error: `message` as one INFO line instead. Installed on the logger that emits it."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self._message = message

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            record.msg = self._message
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


class ContextFilter(logging.Filter):
    """Adds event/conversation ids and removes secrets from every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.event_id = event_id_var.get()
        record.conversation_id = conversation_id_var.get()
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = one_line(scrub(message)), None
        if record.exc_text:
            record.exc_text = _traceback_lines(scrub(record.exc_text))
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
        "slack_sdk.web.async_base_client",  # a line per retried call; bot.slack.connecting sums them up
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
