"""Which channel rule applies to a message, and what Lukas does there (issue 16). Pure: config in, decisions out.

Resolution, per setting: the channel's own entry, then `default` (channels only), then Lukas's global setting.
DMs use the `dm` entry, then the global settings (a `default: {enabled: false}` allowlist never silences DMs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.config.channels_schema import DEFAULT, DM, ChannelLimits, ChannelRule
from bot.config.schema import LukasConfig

ANSWER = "answer"
IGNORE = "ignore"
NOTE = "note"
DEFAULT_DISABLED_NOTE = (
    "Hi! 🐻 I'm taking a nap in this channel, so I won't chat here. Send me a DM or find me in another channel!"
)
_FIELDS = tuple(ChannelRule.model_fields)


@dataclass(frozen=True)
class ChannelSettings:
    """The effective settings in one channel (or in DMs), every default resolved."""

    entry: str  # which entry decided: a channel ID, "default", "dm", or "global" (no entry at all)
    enabled: bool
    when_disabled: str  # "ignore" | "note"
    disabled_note: str
    persona_addendum: str | None
    chain: tuple[str, ...] | None  # None: the global chain
    streaming: bool
    thread_follow_ups: bool
    limits: ChannelLimits
    pictures: bool


@dataclass(frozen=True)
class Intake:
    action: str  # ANSWER | IGNORE | NOTE
    reason: str = ""


def _layers(*, config: LukasConfig, channel_id: str, is_dm: bool) -> tuple[str, list[ChannelRule]]:
    channels = config.channels
    if is_dm:
        return (DM if DM in channels else "global"), [channels[DM]] if DM in channels else []
    layers = [rule for key in (channel_id, DEFAULT) if (rule := channels.get(key)) is not None]
    entry = channel_id if channel_id in channels else DEFAULT if DEFAULT in channels else "global"
    return entry, layers


def _pick(layers: list[ChannelRule], name: str, fallback: Any) -> Any:
    for rule in layers:
        value = getattr(rule, name)
        if value is not None:
            return value
    return fallback


def settings_for(*, config: LukasConfig, channel_id: str, is_dm: bool) -> ChannelSettings:
    entry, layers = _layers(config=config, channel_id=channel_id, is_dm=is_dm)
    chain = _pick(layers, "chain", None)
    limit_layers = [rule.limits for rule in layers if rule.limits is not None]
    limits = ChannelLimits(
        per_person=_pick(limit_layers, "per_person", None),  # type: ignore[arg-type]
        per_conversation=_pick(limit_layers, "per_conversation", None),  # type: ignore[arg-type]
        max_in_flight=_pick(limit_layers, "max_in_flight", None),  # type: ignore[arg-type]
    )
    return ChannelSettings(
        entry=entry,
        enabled=_pick(layers, "enabled", True),
        when_disabled=_pick(layers, "when_disabled", IGNORE),
        disabled_note=_pick(layers, "disabled_note", DEFAULT_DISABLED_NOTE),
        persona_addendum=_pick(layers, "persona_addendum", None) or None,
        chain=tuple(chain) if chain else None,
        streaming=_pick(layers, "streaming", config.streaming.enabled),
        thread_follow_ups=_pick(layers, "thread_follow_ups", True),
        limits=limits,
        pictures=_pick(layers, "pictures", config.pictures.enabled) and config.pictures.enabled,
    )


def limits_entry(*, config: LukasConfig, channel_id: str, is_dm: bool, name: str) -> str:
    """Which entry's `limits.<name>` applies in this channel (as settings_for picks it): a channel ID, "default",
    "dm", or "global". It names the limit's window, so each entry counts in a window of its own."""
    for key in (DM,) if is_dm else (channel_id, DEFAULT):
        rule = config.channels.get(key)
        if rule is not None and rule.limits is not None and getattr(rule.limits, name) is not None:
            return key
    return "global"


def is_dm_channel(channel_id: str) -> bool:
    """Slack DM channel IDs start with D."""
    return channel_id.startswith("D")


def decide_intake(*, settings: ChannelSettings, mentioned: bool, follow_up: bool) -> Intake:
    """What to do with a message Lukas would otherwise answer. `follow_up`: a thread reply without a mention."""
    if not settings.enabled:
        if mentioned and settings.when_disabled == NOTE:
            return Intake(NOTE, f"channel not enabled (channels.{settings.entry}); a note once per thread")
        return Intake(IGNORE, f"channel not enabled (channels.{settings.entry})")
    if follow_up and not settings.thread_follow_ups:
        return Intake(IGNORE, f"thread reply without a mention (channels.{settings.entry}.thread_follow_ups: false)")
    return Intake(ANSWER)


def system_prompt_for(*, base: str, addendum: str | None) -> str:
    """The persona's system prompt with the channel's addendum appended."""
    if not addendum or not addendum.strip():
        return base
    return f"{base.rstrip()}\n\n{addendum.strip()}"


def summary_lines(config: LukasConfig) -> list[str]:
    """`lukas config check` lines for `channels:` and `pictures:`."""
    lines = []
    for key, rule in config.channels.items():
        settings = settings_for(config=config, channel_id=key, is_dm=key == DM)
        parts = ["enabled" if settings.enabled else f"not enabled ({settings.when_disabled})"]
        if settings.persona_addendum:
            parts.append(f"persona addendum ({len(settings.persona_addendum)} characters)")
        if settings.chain:
            parts.append("chain " + " -> ".join(settings.chain))
        parts.append(f"streaming {'on' if settings.streaming else 'off'}")
        parts.append("thread follow-ups" if settings.thread_follow_ups else "mentions only")
        if rule.limits is not None:
            parts.append("own limits")
        parts.append(f"pictures {'on' if settings.pictures else 'off'}")
        lines.append(f"channels.{key}: " + ", ".join(parts))
    if not config.channels:
        lines.append("channels: none configured (Lukas answers everywhere he is invited, with the global settings)")
    pictures = config.pictures
    lines.append(
        f"pictures on request: {'on' if pictures.enabled else 'off'}, "
        f"{pictures.daily_quota_per_person} per person per day, within images.monthly_budget_usd"
    )
    return lines
