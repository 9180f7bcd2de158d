"""The admin tools' pure decisions: `/lukas` parsing, report lines, reload bookkeeping, saved stats."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from bot.admin import commands_logic as cmd
from bot.admin import reload_logic, stats_logic, status_logic
from bot.admin.usage_logic import ImageUsage, ModelUsage, UsageData, month_start, report_lines, usd
from bot.contracts import ContractMetrics, Verdict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", cmd.Command("help")),
        ("  HELP ", cmd.Command("help")),
        ("status", cmd.Command("status")),
        ("usage", cmd.Command("usage", days=7)),
        ("usage 30", cmd.Command("usage", days=30)),
        ("usage 14d", cmd.Command("usage", days=14)),
        ("usage --days 2", cmd.Command("usage", days=2)),
        ("reload", cmd.Command("reload")),
        ("Image  NOW", cmd.Command("image now")),
    ],
)
def test_parse_command_understands_every_subcommand(text: str, expected: cmd.Command) -> None:
    assert cmd.parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("stauts", "Did you mean `/lukas status`?"),
        ("usage lots", "`lots` is not a number of days"),
        ("usage 0", "between 1 and 366"),
        ("usage 1000", "between 1 and 366"),
        ("usage 1 2", "takes one number of days"),
        ("image", "did you mean `/lukas image now`?"),
        ("image later", "did you mean `/lukas image now`?"),
        ("status please", "`status` takes no arguments"),
        ("dance", "I don't know `dance`."),
    ],
)
def test_parse_command_explains_mistakes(text: str, hint: str) -> None:
    result = cmd.parse_command(text)
    assert isinstance(result, cmd.ParseError)
    assert hint in result.message


def test_only_help_is_open_to_everyone() -> None:
    admins = ["U0ADMIN"]
    for name in ("status", "usage", "reload", "image now"):
        assert not cmd.may_run(command=cmd.Command(name), user_id="U0ANNA", admins=admins)
        assert cmd.may_run(command=cmd.Command(name), user_id="U0ADMIN", admins=admins)
    assert cmd.may_run(command=cmd.Command("help"), user_id="U0ANNA", admins=[])
    assert not cmd.may_run(command=cmd.Command("status"), user_id=None, admins=admins)
    assert "for the admins" in cmd.help_text(is_admin=False)
    assert "for the admins" not in cmd.help_text(is_admin=True)


def test_usage_report_shows_each_provider_and_model() -> None:
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    data = UsageData(
        since=now - dt.timedelta(days=7),
        until=now,
        messages={"user": 10, "bot": 8, "fallback": 2},
        flagged=1,
        models=[
            ModelUsage(
                "openai",
                "gpt-4.1-mini",
                calls=9,
                ok_calls=8,
                attempts=11,
                prompt_tokens=900,
                completion_tokens=300,
                cost_usd=0.0012,
            ),
            ModelUsage("anthropic", "claude-x", calls=1, ok_calls=0, attempts=3, cost_usd=0.0),
        ],
        images=[ImageUsage("succeeded", 1, 0.042), ImageUsage("skipped", 2, 0.0)],
        month_start=dt.datetime(2026, 10, 31, 23, 0, tzinfo=dt.UTC),
        month_chat_usd=1.5,
        month_image_usd=0.084,
    )
    lines = report_lines(data=data, days=7, chat_budget_usd=1.0, image_budget_usd=5.0)
    text = "\n".join(lines)
    assert "Messages: 10 from people, 8 replies, 2 fallback lines, 1 refused by the checks" in text
    assert "Model calls: 10, cost $0.0012" in text
    assert "openai gpt-4.1-mini: 9 calls, 3 errors, 1 fallbacks, 900 in + 300 out tokens, $0.0012" in text
    assert "anthropic claude-x: 1 calls, 3 errors, 1 fallbacks, 0 in + 0 out tokens, $0.0000" in text
    assert "Pictures: 3 (2 skipped, 1 succeeded), cost $0.0420" in text
    assert "chat: $1.5000 of $1.0000 (150%) ⚠️ over budget" in text
    assert "pictures: $0.0840 of $5.0000 (2%)" in text
    no_budget = "\n".join(report_lines(data=data, days=7, chat_budget_usd=None, image_budget_usd=5.0))
    assert "chat: $1.5000 (no budget set)" in no_budget


def test_month_start_follows_the_budget_time_zone() -> None:
    late_utc = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)  # already December in Berlin
    assert month_start(now=late_utc, timezone="Europe/Berlin") == dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC)
    assert month_start(now=late_utc, timezone="UTC") == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert usd(12.345) == "$12.35" and usd(0.00012) == "$0.0001"


def test_watcher_acts_only_on_a_change_seen_twice() -> None:
    a, b = reload_logic.fingerprint(b"a"), reload_logic.fingerprint(b"b")
    assert reload_logic.should_process(seen=a, processed=a, pending=None) == (False, None)
    assert reload_logic.should_process(seen=b, processed=a, pending=None) == (False, b)  # maybe half-written
    assert reload_logic.should_process(seen=b, processed=a, pending=b) == (True, None)  # stable: act
    gone = reload_logic.fingerprint(None, error="file not found")
    assert gone != a and gone == reload_logic.fingerprint(None, error="file not found")


def test_alert_key_is_per_distinct_error_and_per_episode() -> None:
    key = reload_logic.alert_key(path="c.yml", problems=["persona.mood: unknown setting"], episode=1)
    assert key == reload_logic.alert_key(path="c.yml", problems=["persona.mood: unknown setting"], episode=1)
    assert key != reload_logic.alert_key(path="c.yml", problems=["llm.model: bad"], episode=1)
    assert key != reload_logic.alert_key(path="c.yml", problems=["persona.mood: unknown setting"], episode=2)


def test_reload_texts_read_like_config_check() -> None:
    refused = reload_logic.ReloadOutcome("refused", "/etc/lukas/config.yml", problems=["llm.temperature: too hot"])
    assert reload_logic.outcome_text(refused).splitlines()[:2] == [
        "config error in /etc/lukas/config.yml:",
        "  - llm.temperature: too hot",
    ]
    applied = reload_logic.ReloadOutcome("applied", "config.yml", changed=["persona", "database"])
    text = reload_logic.outcome_text(applied)
    assert "changed: persona, database" in text and "database takes effect at the next restart" in text
    assert reload_logic.summary(applied) == "applied (persona, database)"
    assert reload_logic.summary(refused).startswith("refused (1 problem(s)")


def test_saved_stats_round_trip_and_render() -> None:
    metrics = ContractMetrics()
    metrics.record("chat_input/banned_terms", verdict=Verdict.VIOLATION, seconds=0.001)
    metrics.record_check("chat_input", verdict=Verdict.VIOLATION, seconds=0.001)
    snapshot = metrics.snapshot()
    payload = stats_logic.encode(contracts=snapshot, breakers={"openai:gpt-4.1-mini": "open"})
    taken = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    saved = stats_logic.decode(payload, instance_id="host:1", version="0.1.0", started_at=taken, taken_at=taken)
    assert saved.contracts == snapshot
    lines = stats_logic.render([saved], now=taken + dt.timedelta(seconds=20), stale_after=dt.timedelta(minutes=5))
    text = "\n".join(lines)
    assert "host:1" in text and "saved 20s ago" in text and "STALE" not in text
    assert "chat_input/banned_terms: 1 runs, 1 violations" in text
    assert "openai:gpt-4.1-mini: open" in text
    old = stats_logic.render([saved], now=taken + dt.timedelta(hours=2), stale_after=dt.timedelta(minutes=5))
    assert "STALE" in old[0]
    broken = stats_logic.decode("not json", instance_id="h", version="v", started_at=taken, taken_at=taken)
    assert broken.contracts is None and broken.breakers == {}
    assert "no metrics saved yet" in stats_logic.render([], now=taken, stale_after=dt.timedelta(minutes=5))[0]


def test_status_lines() -> None:
    facts = status_logic.StatusFacts(
        version="0.1.0",
        uptime_seconds=3 * 3600 + 120,
        chain=("openai:gpt-4.1-mini",),
        breakers={"openai:gpt-4.1-mini": "open", "openai:old": "closed"},
        database_ok=False,
        scheduler="running",
        next_image_run=dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC),
        last_image=status_logic.ImageFacts(
            "succeeded",
            dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC),
            0.042,
            "winter",
            "https://slack.example/files/F1",
        ),
        config_path="config.yml",
    )
    lines = status_logic.status_lines(facts)
    assert lines[0] == "Lukas 0.1.0, up 3 h 2 min"
    assert lines[1] == "Model: openai gpt-4.1-mini, breaker open"
    chained = dataclasses.replace(
        facts, chain=("primary:gpt-4.1-mini", "backup:claude"), breakers={"primary:gpt-4.1-mini": "open"}
    )
    assert status_logic.status_lines(chained)[1] == (
        "Models, in order: primary gpt-4.1-mini, breaker open → backup claude, breaker closed (not called yet)"
    )
    assert "Database: UNREACHABLE" in lines
    assert "Last picture: unknown (database unreachable)" in lines
    healthy = status_logic.status_lines(dataclasses.replace(facts, database_ok=True, last_reload="applied (llm)"))
    picture = "Last picture: 2026-11-16 09:00 UTC, succeeded, theme winter, $0.0420 — https://slack.example/files/F1"
    assert picture in healthy
    assert "Config: config.yml; last reload: applied (llm)" in healthy
    assert "Next picture: 2026-11-23 09:00 UTC (scheduler running)" in lines
