"""`lukas usage [--days N]`, `lukas stats` and `lukas forget --user U…`: admin work straight on the database."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import sys
from collections.abc import AsyncIterator
from typing import Any

from bot.admin.commands_logic import DEFAULT_DAYS, MAX_DAYS, identified
from bot.errors import ConfigError, DatabaseUnavailableError

STALE_AFTER = dt.timedelta(minutes=5)


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (e.g. --days 30)") from None
    if not 1 <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"days must be between 1 and {MAX_DAYS} (got {days})")
    return days


def register(commands: Any) -> None:
    usage = commands.add_parser(
        "usage",
        help="messages, model calls, tokens and cost by provider and model, pictures, month against the budgets",
        description="The usage and cost report (the same as `/lukas usage`), from the database ($DATABASE_URL).",
    )
    usage.add_argument("--days", type=_days, default=DEFAULT_DAYS, help=f"how far back (default {DEFAULT_DAYS})")
    usage.add_argument("--config", default=None, help="config file for the budgets (default: $LUKAS_CONFIG)")
    usage.set_defaults(handler=cmd_usage)

    stats = commands.add_parser(
        "stats",
        help="contract and breaker metrics saved by the running Lukas",
        description="Contract metrics and model breaker states, as last saved by each running Lukas.",
    )
    stats.set_defaults(handler=cmd_stats)

    forget = commands.add_parser(
        "forget",
        help="erase the text of every message a person wrote (what `/lukas forget` does for them)",
        description="Erase the stored text of a person's messages ($DATABASE_URL). Cost ledger rows stay.",
    )
    forget.add_argument("--user", required=True, type=_user_id, help="the person's Slack user ID, e.g. U012AB3CD")
    forget.add_argument("--dry-run", action="store_true", help="only say how many messages would be erased")
    forget.set_defaults(handler=cmd_forget)


def _user_id(text: str) -> str:
    if identified(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a Slack user ID (they look like 'U012AB3CD')")
    return text


def cmd_forget(args: argparse.Namespace) -> int:
    from bot.chat import privacy

    async def work() -> tuple[int, int | None]:
        async with _sessions() as sessions:
            run_db = privacy.engine_runner(sessions.kw["bind"])
            stored = await privacy.count_for_user(run_db, user_id=args.user)
            if args.dry_run or stored == 0:
                return stored, None
            return stored, await privacy.forget_user(run_db, user_id=args.user)

    stored, erased = asyncio.run(work())
    if erased is None:
        verb = "would be erased (--dry-run)" if args.dry_run and stored else "erased: nothing stored"
        print(f"{args.user}: {stored} message(s) with text; {verb}")
    else:
        print(f"{args.user}: erased the text of {erased} message(s)")
    return 0


def _budgets(path: str | None) -> tuple[float | None, float | None, str]:
    """(chat budget, image budget, month time zone) from config.yml; without a usable config, none and UTC."""
    from bot.config.loader import default_config_path, load_config

    try:
        config = load_config(path or default_config_path())
    except ConfigError as error:
        print(f"note: budgets not shown, config.yml is not usable ({'; '.join(error.problems)})", file=sys.stderr)
        return None, None, "UTC"
    return config.usage.chat_monthly_budget_usd, config.images.monthly_budget_usd, config.images.schedule.timezone


def cmd_usage(args: argparse.Namespace) -> int:
    from bot.admin.usage_logic import report_lines
    from bot.admin.usage_service import collect_usage

    chat_budget, image_budget, timezone = _budgets(args.config)

    async def collect() -> Any:
        async with _sessions() as sessions:
            return await collect_usage(sessions, days=args.days, month_timezone=timezone)

    data = asyncio.run(collect())
    for line in report_lines(data=data, days=args.days, chat_budget_usd=chat_budget, image_budget_usd=image_budget):
        print(line)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from bot.admin import stats_logic
    from bot.admin.stats_service import saved_stats

    async def collect() -> Any:
        async with _sessions() as sessions:
            return await saved_stats(sessions)

    saved = asyncio.run(collect())
    for line in stats_logic.render(saved, now=dt.datetime.now(dt.UTC), stale_after=STALE_AFTER):
        print(line)
    return 0


@contextlib.asynccontextmanager
async def _sessions() -> AsyncIterator[Any]:
    """A session factory on $DATABASE_URL, checked for reachability, disposed afterwards. Database trouble
    becomes one readable line (DatabaseUnavailableError), never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.store.db import create_engine, ping, session_factory

    engine = create_engine()
    try:
        await ping(engine)
        try:
            yield session_factory(engine)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise DatabaseUnavailableError(
                f"cannot read the database: {reason} (a new database needs `lukas db upgrade`)"
            ) from None
    finally:
        await engine.dispose()
