"""The `limits:` and `retention:` sections of config.yml (issue 12): per-person and per-conversation limits,
answers in flight, what Lukas says when he slows down or rests, and how long message text is kept."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    """At most `messages` answered messages in any `window_seconds` (a sliding window)."""

    messages: int = Field(ge=1, le=100_000)
    window_seconds: float = Field(ge=1, le=86_400)


def _lines(lines: list[str]) -> list[str]:
    if any(not line.strip() for line in lines):
        raise ValueError("lines must not be empty strings")
    return lines


class LimitsConfig(Strict):
    # One person, across all conversations (admins are exempt); one conversation, across all people.
    per_person: Window | None = Window(messages=20, window_seconds=600)
    per_conversation: Window | None = Window(messages=60, window_seconds=600)
    max_in_flight: int = Field(default=64, ge=1, le=10_000)  # answers worked on at once, per process
    max_queued: int = Field(default=512, ge=0, le=100_000)  # beyond in flight + queued: left to the sweeper
    slow_down_lines: list[str] = Field(
        default=[
            "Whoa, that's a lot of honey at once! 🐻 Let's slow down a little — I'll be ready again in a few minutes.",
            "My paws can't keep up! 🐾 Give me a few minutes to catch my breath, then let's keep chatting.",
        ],
        min_length=1,
    )
    resting_lines: list[str] = Field(
        default=[
            "I'm resting my bear brain for the rest of the month 🐻💤 My keepers know; I'll be back soon!",
            "Lukas is hibernating until next month 🐻 The honey jar for chatting is empty — see you soon!",
        ],
        min_length=1,
    )

    _check_lines = field_validator("slow_down_lines", "resting_lines")(_lines)


class RetentionConfig(Strict):
    # Message text older than this is erased by a daily job (ledger rows and token counts stay); null: kept.
    days: int | None = Field(default=90, ge=1, le=36_500)
    hour: int = Field(default=3, ge=0, le=23)  # when the daily job runs (UTC)
    batch_size: int = Field(default=1000, ge=10, le=100_000)  # rows per transaction, so answers never wait long
