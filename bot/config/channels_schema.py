"""The `channels:` and `pictures:` sections of config.yml (issue 16): how Lukas behaves per channel, and pictures drawn
on request.

`channels:` is keyed by Slack channel ID, plus `default` (every channel without its own entry, and the base that
channel entries fill their unset settings from) and `dm` (direct messages; DMs do not follow `default`). A setting
left out of an entry comes from `default` (channels) or Lukas's global setting (both).

    channels:
      default: {enabled: false, when_disabled: note}      # an allowlist: only the channels below
      C0LABOPS: {enabled: true, persona_addendum: "Here you are terse and precise.", streaming: true}
      C0RANDOM: {enabled: true, thread_follow_ups: false, chain: [cheap]}
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.config.guards_schema import Window

DEFAULT = "default"
DM = "dm"
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
MAX_ADDENDUM_CHARS = 4000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelLimits(Strict):
    """Overrides of the global `limits:` for messages in one channel; what is left out keeps the global value.
    `max_in_flight` caps the answers worked on at once in that channel (within the global cap)."""

    per_person: Window | None = None
    per_conversation: Window | None = None
    max_in_flight: int | None = Field(default=None, ge=1, le=10_000)


class ChannelRule(Strict):
    """One entry of `channels:`. Every setting is optional: None means "as `default` / the global setting"."""

    enabled: bool | None = None
    # Where Lukas is not enabled: ignore mentions, or answer once per thread with a short note (disabled_note).
    when_disabled: Literal["ignore", "note"] | None = None
    disabled_note: str | None = Field(default=None, min_length=1, max_length=500)
    persona_addendum: str | None = Field(default=None, max_length=MAX_ADDENDUM_CHARS)
    chain: list[str] | None = Field(default=None, min_length=1)  # provider names from providers:
    streaming: bool | None = None
    # true: answer replies in a thread Lukas is in without a mention; false: only when mentioned.
    thread_follow_ups: bool | None = None
    limits: ChannelLimits | None = None
    pictures: bool | None = None  # whether "@Lukas draw ..." makes pictures here

    @field_validator("chain")
    @classmethod
    def _each_once(cls, chain: list[str] | None) -> list[str] | None:
        for index, name in enumerate(chain or []):
            if name in (chain or [])[:index]:
                raise ValueError(f"{name!r} is listed twice")
        return chain


class PicturesConfig(Strict):
    """Pictures drawn on request ("@Lukas draw yourself at the beach", `/lukas draw <idea>`)."""

    enabled: bool = True
    daily_quota_per_person: int = Field(default=3, ge=0, le=1000)  # admins too; 0: nobody may ask
    max_idea_chars: int = Field(default=300, ge=10, le=2000)
    resting_lines: list[str] = Field(
        default=[
            "My crayons are resting for today 🖍️🐻 Ask me again tomorrow and I'll draw you something lovely!",
            "My crayons are resting right now 🐻 I've drawn all I can for the moment. Let's try again another day!",
        ],
        min_length=1,
    )
    refusal_lines: list[str] = Field(
        default=[
            "Hmm, that's not something this bear can draw 🐻 How about something else?",
            "I'd rather not paint that one. Got another idea for me? 🎨🐻",
        ],
        min_length=1,
    )
    working_line: str = Field(default="Ooh, on it! Fetching my crayons 🖍️🐻", min_length=1, max_length=200)

    @field_validator("resting_lines", "refusal_lines")
    @classmethod
    def _no_blank_lines(cls, lines: list[str]) -> list[str]:
        if any(not line.strip() for line in lines):
            raise ValueError("lines must not be empty strings")
        return lines


def channel_key_problem(key: str) -> str | None:
    """Why `key` cannot be a key of `channels:` (None when it can)."""
    if key in (DEFAULT, DM) or CHANNEL_ID.match(key):
        return None
    import difflib

    close = difflib.get_close_matches(key.lower(), [DEFAULT, DM], n=1, cutoff=0.6)
    if close:
        return f"unknown entry (did you mean {close[0]!r}?)"
    if key.startswith("#"):
        return "use the channel's ID, not its name (in Slack: channel name > About > Channel ID, e.g. 'C0123ABCD')"
    if key.startswith("D"):
        return "DMs share one entry: write it as 'dm'"
    return "not a Slack channel ID (they look like 'C0123ABCD'), 'default' or 'dm'"
