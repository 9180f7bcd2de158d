"""Decisions of the config watcher, kept pure: has the file changed, what changed, what to tell the admins."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import BaseModel

APPLIED: Final = "applied"
UNCHANGED: Final = "unchanged"
REFUSED: Final = "refused"
Status = Literal["applied", "unchanged", "refused"]

# Settings read only when Lukas starts: an edit is kept, but needs a restart to matter.
RESTART_ONLY = ("database",)


@dataclass(frozen=True)
class ReloadOutcome:
    status: Status
    path: str
    changed: list[str] = field(default_factory=list)  # top-level sections that differ
    problems: list[str] = field(default_factory=list)  # when refused: one line per field

    @property
    def ok(self) -> bool:
        return self.status != REFUSED


def fingerprint(data: bytes | None, *, error: str | None = None) -> str:
    """What the watcher compares between polls: the content's hash, or the read error (a deleted file)."""
    if data is None:
        return "error:" + hashlib.sha256((error or "").encode()).hexdigest()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def should_process(*, seen: str, processed: str | None, pending: str | None) -> tuple[bool, str | None]:
    """Decide on one poll. Returns (process now, new pending fingerprint).

    A new fingerprint is only acted on once it has been seen twice in a row, so a file caught half-written
    by an editor is never applied (or reported) before the save finishes."""
    if seen == processed:
        return False, None
    if seen == pending:
        return True, None
    return False, seen


def changed_sections(old: BaseModel, new: BaseModel) -> list[str]:
    """Top-level config sections whose values differ (persona, llm, images, ...), in schema order."""
    return [name for name in type(new).model_fields if getattr(old, name) != getattr(new, name)]


def alert_key(*, path: str, problems: list[str], episode: int) -> str:
    """The once-key of the admin DM: one DM per distinct error, again if it comes back after a good reload."""
    text = "\n".join([path, str(episode), *problems])
    return "config:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def error_lines(*, path: str, problems: list[str]) -> list[str]:
    """The refusal worded like `lukas config check` prints it."""
    return [
        f"config error in {path}:",
        *[f"  - {problem}" for problem in problems],
        "The last good configuration stays in force. Fix the lines above (check with `lukas config check`).",
    ]


def admin_alert_text(*, path: str, problems: list[str]) -> str:
    lines = error_lines(path=path, problems=problems)
    return ":warning: I could not use the edited config.yml 🐻\n```\n" + "\n".join(lines) + "\n```"


def summary(outcome: ReloadOutcome) -> str:
    """A few words for `/lukas status`: applied (persona, llm) | unchanged | refused (2 problems)."""
    if outcome.status == REFUSED:
        return f"refused ({len(outcome.problems)} problem(s); the last good config is in force)"
    return f"{outcome.status} ({', '.join(outcome.changed)})" if outcome.changed else outcome.status


def outcome_text(outcome: ReloadOutcome) -> str:
    """The answer to `/lukas reload`, and the log line after an automatic reload."""
    if outcome.status == REFUSED:
        return "\n".join(error_lines(path=outcome.path, problems=outcome.problems))
    if outcome.status == UNCHANGED or not outcome.changed:
        return f"{outcome.path}: OK, nothing changed (contracts and files it names were re-read)."
    text = f"{outcome.path}: reloaded; changed: {', '.join(outcome.changed)}. Applies from the next message or job."
    later = [name for name in outcome.changed if name in RESTART_ONLY]
    if later:
        text += f" ({', '.join(later)} takes effect at the next restart.)"
    return text
