"""The usage report's figures equal the sums in the database; `lukas usage` and `lukas stats` print them."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.stats_service import MetricsRecorder
from bot.admin.usage_service import collect_usage
from bot.cli import main
from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.contracts import ContractMetrics, Verdict
from bot.store.db import session_factory
from bot.store.models import Conversation, GeneratedImage, LLMCall, Message
from tests.helpers import SHIPPED_CONFIG

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
MODELS = [("openai", "gpt-4.1-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-sonnet")]
OUTCOMES = ["ok", "ok", "ok", "rate_limited", "server_error", "breaker_open"]


async def seed(engine: AsyncEngine) -> dict[str, list]:
    """Known rows: some inside the last 7 days, some older (this month and last month)."""
    rng = random.Random(6)
    sessions = session_factory(engine)
    calls, messages, images = [], [], []
    async with sessions() as session:
        conversation = Conversation(team_id="T0TEAM", channel_id="D0DM", thread_ts="", kind="dm")
        session.add(conversation)
        await session.flush()
        for index in range(60):
            at = NOW - dt.timedelta(hours=rng.uniform(0, 24 * 40))
            provider, model = rng.choice(MODELS)
            outcome = rng.choice(OUTCOMES)
            calls.append(
                LLMCall(
                    conversation_id=conversation.id,
                    provider=provider,
                    model=model,
                    prompt_tokens=rng.randint(10, 900) if outcome == "ok" else 0,
                    completion_tokens=rng.randint(5, 150) if outcome == "ok" else 0,
                    cost_usd=round(rng.uniform(0.00001, 0.002), 6) if outcome == "ok" else 0.0,
                    attempts=rng.randint(1, 3) if outcome != "breaker_open" else 0,
                    outcome=outcome,
                    created_at=at,
                )
            )
            sender = rng.choice(["user", "user", "bot", "fallback"])
            messages.append(
                Message(
                    conversation_id=conversation.id,
                    channel_id="D0DM",
                    slack_ts=f"1800000000.{index:06d}",
                    sender=sender,
                    content="x",
                    flagged=sender == "user" and index % 7 == 0,
                    created_at=at,
                )
            )
        for index, (days_ago, status, cost) in enumerate(
            [
                (1, "succeeded", 0.042),
                (3, "skipped", 0.0),
                (6.5, "failed", 0.011),
                (12, "succeeded", 0.042),
                (30, "succeeded", 0.167),
            ]
        ):
            images.append(
                GeneratedImage(
                    slot_key=f"slot-{index}", status=status, cost_usd=cost, created_at=NOW - dt.timedelta(days=days_ago)
                )
            )
        session.add_all(calls + messages + images)
        await session.commit()
    return {"calls": calls, "messages": messages, "images": images}


async def test_report_figures_equal_the_sums_in_the_database(db_engine: AsyncEngine) -> None:
    rows = await seed(db_engine)
    data = await collect_usage(session_factory(db_engine), days=7, now=NOW, month_timezone="Europe/Berlin")
    since = NOW - dt.timedelta(days=7)
    calls = [c for c in rows["calls"] if since <= c.created_at < NOW]
    assert calls and len(calls) < len(rows["calls"])

    by_model = {(m.provider, m.model): m for m in data.models}
    assert set(by_model) == {(c.provider, c.model) for c in calls}
    for key, usage in by_model.items():
        mine = [c for c in calls if (c.provider, c.model) == key]
        assert usage.calls == len(mine)
        assert usage.fallbacks == sum(c.outcome != "ok" for c in mine)
        assert usage.errors == sum(c.attempts for c in mine) - sum(c.outcome == "ok" for c in mine)
        assert usage.prompt_tokens == sum(c.prompt_tokens for c in mine)
        assert usage.completion_tokens == sum(c.completion_tokens for c in mine)
        assert usage.cost_usd == pytest.approx(sum(c.cost_usd for c in mine), abs=1e-9)

    messages = [m for m in rows["messages"] if since <= m.created_at < NOW]
    for sender in ("user", "bot", "fallback"):
        assert data.messages.get(sender, 0) == sum(m.sender == sender for m in messages)
    assert data.flagged == sum(m.flagged for m in messages)

    images = [i for i in rows["images"] if since <= i.created_at < NOW]
    assert data.image_count == len(images) == 3
    assert data.image_cost_usd == pytest.approx(sum(i.cost_usd for i in images))

    month = dt.datetime(2026, 10, 31, 23, 0, tzinfo=dt.UTC)  # 1 November in Berlin
    assert data.month_start == month
    assert data.month_chat_usd == pytest.approx(sum(c.cost_usd for c in rows["calls"] if c.created_at >= month))
    assert data.month_image_usd == pytest.approx(0.042 + 0.011 + 0.042)


async def test_lukas_usage_prints_the_report(
    migrated_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.store.db import create_engine

    engine = create_engine(migrated_db)
    try:
        now = dt.datetime.now(dt.UTC)
        async with session_factory(engine)() as session:
            session.add_all(
                [
                    LLMCall(
                        provider="openai",
                        model="gpt-4.1-mini",
                        prompt_tokens=1200,
                        completion_tokens=300,
                        cost_usd=0.25,
                        attempts=1,
                        outcome="ok",
                        created_at=now - dt.timedelta(days=2),
                    ),
                    LLMCall(
                        provider="openai",
                        model="gpt-4.1-mini",
                        attempts=3,
                        outcome="server_error",
                        created_at=now - dt.timedelta(days=1),
                    ),
                    LLMCall(
                        provider="openai",
                        model="gpt-4.1-mini",
                        prompt_tokens=99,
                        cost_usd=9.0,
                        attempts=1,
                        outcome="ok",
                        created_at=now - dt.timedelta(days=20),
                    ),  # outside 7 days
                    GeneratedImage(slot_key="s1", status="succeeded", cost_usd=0.042, created_at=now),
                ]
            )
            await session.commit()
    finally:
        await engine.dispose()
    monkeypatch.setenv("DATABASE_URL", migrated_db)
    monkeypatch.setenv("LUKAS_CONFIG", str(SHIPPED_CONFIG))

    assert await_cli(["usage", "--days", "7"]) == 0
    out = capsys.readouterr().out
    assert "Usage for the last 7 day(s)" in out
    assert "Model calls: 2, cost $0.2500" in out
    assert "openai gpt-4.1-mini: 2 calls, 3 errors, 1 fallbacks, 1,200 in + 300 out tokens, $0.2500" in out
    assert "Pictures: 1 (1 succeeded), cost $0.0420" in out
    assert "pictures: $0.0420 of $5.0000 (1%)" in out

    assert await_cli(["usage", "--days", "0"]) == 2  # argparse explains
    assert "days must be between 1 and 366" in capsys.readouterr().err


async def test_lukas_stats_prints_what_the_running_bot_saved(
    migrated_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.store.db import create_engine

    metrics = ContractMetrics()
    for _ in range(3):
        metrics.record("chat_output/reply_length", verdict=Verdict.FIXED, seconds=0.0002)
        metrics.record_check("chat_output", verdict=Verdict.FIXED, seconds=0.0002)
    engine = create_engine(migrated_db)
    live = LiveConfig(load_config(SHIPPED_CONFIG, env={}), path=SHIPPED_CONFIG)
    recorder = MetricsRecorder(
        sessions=session_factory(engine),
        config=live,
        contracts=lambda: metrics.snapshot(),
        breakers=lambda: {"openai:gpt-4.1-mini": "open"},
        version="9.9.9",
        started_at=dt.datetime.now(dt.UTC),
        instance_id="bear-host:42",
    )
    try:
        assert await recorder.save_quietly()
        assert await recorder.save_quietly()  # replaces its own row, never piles up
    finally:
        await engine.dispose()
    monkeypatch.setenv("DATABASE_URL", migrated_db)

    assert await_cli(["stats"]) == 0
    out = capsys.readouterr().out
    assert out.count("Lukas 9.9.9 on bear-host:42") == 1
    assert "chat_output/reply_length: 3 runs, 0 violations, 3 fixes" in out
    assert "openai:gpt-4.1-mini: open" in out


def await_cli(argv: list[str]) -> int:
    """bot.cli.main runs its own event loop: call it from a thread, as a console would."""
    from tests.helpers import in_thread

    try:
        return in_thread(main, argv)
    except SystemExit as exc:
        return int(exc.code or 0)


async def test_cli_explains_an_unusable_database(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")  # no tables yet
    assert await_cli(["stats"]) == 1
    assert "lukas db upgrade" in capsys.readouterr().err
