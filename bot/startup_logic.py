"""Startup decisions, pure: example values left in the environment, how an unreachable Slack is reported (and
how often), and what to say when the data folder cannot be written."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping

# The secrets `lukas run` reads: the Slack ones plus every `<PROVIDER>_API_KEY`.
SLACK_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")
# The uid the Docker image runs as (Dockerfile: useradd --uid 10001).
CONTAINER_UID = 10001
REPORT_EVERY_SECONDS = 60.0

# Known token prefixes, then what .env.example, the docs and habit put where a real value belongs:
# `xoxb-your-bot-token`, `sk-...`, `<your key>`, `changeme`, `change-me-to-...`, `xxxx`, `TODO`, `replace-me`.
_PREFIX = r"(?:xox[abpe]-|xapp-|sk-(?:proj-|ant-)?)?"
_FILLER = r"(?:\.{3}.*|….*|<.*>|x{3,}|(?:your|change[-_ ]?me|replace[-_ ]?me|placeholder)(?:[-_ .].*)?|todo|fixme)"
_PLACEHOLDER = re.compile(rf"{_PREFIX}{_FILLER}", re.IGNORECASE)


def is_placeholder(value: str) -> bool:
    """A value copied from an example (`xoxb-your-bot-token`, `sk-...`), never a real secret's shape."""
    return _PLACEHOLDER.fullmatch(value.strip()) is not None


def placeholder_problems(env: Mapping[str, str]) -> list[str]:
    """One line per secret variable that still holds an example value (the value itself is never repeated)."""
    names = [*SLACK_SECRETS, *sorted(n for n in env if n.endswith("_API_KEY") and n not in SLACK_SECRETS)]
    return [
        f"{name} still holds an example value: set it to the real one (docs/quickstart.md, 'Get the tokens')"
        + (", or leave it empty if no chat model uses it" if name.endswith("_API_KEY") else "")
        for name in names
        if env.get(name) and is_placeholder(env[name])
    ]


def connection_problem(error: BaseException) -> str | None:
    """'DNS error: …' / 'connection error: …' / 'timed out' for a failure to reach a server; None for others."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, socket.gaierror) or "Name or service not known" in text or "nodename nor servname" in text:
        return f"DNS error: {text}"
    cause = error.__cause__ or error.__context__
    if isinstance(cause, socket.gaierror):
        return f"DNS error: {text}"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError):  # aiohttp's ClientConnectorError and ClientOSError are OSErrors too
        return f"connection error: {text}"
    return None


def unreachable_line(*, url: str, problem: str) -> str:
    return f"cannot reach Slack at {url} ({problem}): check the network, DNS and proxy (HTTPS_PROXY); retrying"


def report_due(*, last: float | None, now: float, every: float = REPORT_EVERY_SECONDS) -> bool:
    """Whether a repeating failure is logged again: the first time, then at most once per `every` seconds."""
    return last is None or now - last >= every


def unwritable_folder_message(*, folder: str, database: str, uid: int | None) -> str:
    who = f"uid {uid}" if uid is not None else "this user"
    return (
        f"cannot write to the data folder {folder} (SQLite database {database}); Lukas runs as {who}. "
        f"In Docker (the image runs as uid {CONTAINER_UID}): `chown -R {CONTAINER_UID} <the host folder mounted at "
        f"{folder}>`. Otherwise make {folder} writable for {who}, or set DATABASE_URL to a writable place"
    )
