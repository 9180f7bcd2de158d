"""Schedule slots: which cron time a run belongs to, its database key, and the catch-up window. Pure."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.config.images_schema import ScheduleConfig

_MAX_STEPS = 20_000
# The scheduler may start a job a little after its time; a slot is looked for this far back beyond the grace.
SCHEDULER_SLACK = dt.timedelta(minutes=5)


def trigger_for(schedule: ScheduleConfig) -> CronTrigger:
    return CronTrigger.from_crontab(schedule.cron, timezone=ZoneInfo(schedule.timezone))


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def slot_key(slot: dt.datetime) -> str:
    """`weekly:2026-11-23T09:00Z`: the cron time in UTC, so every replica derives the same key."""
    return f"weekly:{_utc(slot):%Y-%m-%dT%H:%MZ}"


def manual_key(now: dt.datetime) -> str:
    """A key of its own for `lukas image --now` (microseconds keep two quick manual runs apart)."""
    return f"manual:{_utc(now):%Y-%m-%dT%H:%M:%S.%fZ}"


def slots_between(*, schedule: ScheduleConfig, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Cron times t with start <= t <= end, oldest first.

    Daylight saving: a local time that happens twice (the fall-back hour) is one slot, its first occurrence; a
    local time that never happens (the spring-forward hour) is the trigger's one shifted time. Either way, once.
    """
    trigger = trigger_for(schedule)
    zone = ZoneInfo(schedule.timezone)
    found: list[dt.datetime] = []
    cursor = _utc(start).astimezone(zone)
    end_utc = _utc(end)
    for _ in range(_MAX_STEPS):
        fire = trigger.get_next_fire_time(None, cursor)
        if fire is None or _utc(fire) > end_utc:
            break
        if not found or fire.replace(tzinfo=None) != found[-1].replace(tzinfo=None):
            found.append(fire)
        # A whole second later, counted in UTC: the trigger drops microseconds, and local wall-clock arithmetic
        # in the repeated hour lands back on its first occurrence (both made the search spin to its step cap).
        cursor = (_utc(fire) + dt.timedelta(seconds=1)).astimezone(zone)
    return found


def latest_slot(*, schedule: ScheduleConfig, now: dt.datetime, lookback: dt.timedelta) -> dt.datetime | None:
    """The newest cron time within `lookback` before `now` (inclusive), or None."""
    slots = slots_between(schedule=schedule, start=_utc(now) - lookback, end=now)
    return slots[-1] if slots else None


def due_slot(*, schedule: ScheduleConfig, now: dt.datetime) -> dt.datetime | None:
    """The slot a Lukas starting at `now` still owes: the newest one within the grace. Older ones are dropped,
    and only ever one is returned, so a long outage posts once, not once per missed week."""
    return latest_slot(schedule=schedule, now=now, lookback=dt.timedelta(minutes=schedule.grace_minutes))


def next_slot(*, schedule: ScheduleConfig, now: dt.datetime) -> dt.datetime | None:
    trigger = trigger_for(schedule)
    return trigger.get_next_fire_time(None, _utc(now).astimezone(ZoneInfo(schedule.timezone)))


def slots_before(*, schedule: ScheduleConfig, moment: dt.datetime, count: int) -> list[dt.datetime]:
    """Up to `count` cron times strictly before `moment`, oldest first (searched up to about a year back)."""
    end = _utc(moment) - dt.timedelta(microseconds=1)
    found: list[dt.datetime] = []
    for days in (1, 8, 32, 100, 370):
        found = slots_between(schedule=schedule, start=end - dt.timedelta(days=days), end=end)
        if len(found) >= count:
            break
    return found[-count:] if count > 0 else []


def local_day(*, moment: dt.datetime, timezone: str) -> dt.date:
    """The calendar day of `moment` in the schedule's time zone: the day the theme is chosen for."""
    return _utc(moment).astimezone(ZoneInfo(timezone)).date()


def month_window(*, now: dt.datetime, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the calendar month holding `now` in `timezone`, both in UTC (the budget's month)."""
    zone = ZoneInfo(timezone)
    local = _utc(now).astimezone(zone)
    start = dt.datetime(local.year, local.month, 1, tzinfo=zone)
    following = dt.datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(dt.UTC), following.astimezone(dt.UTC)
