"""`lukas image`: preview the picture for a date, make one now, or post kept images that Slack did not get."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.config.images_schema import ImagesConfig
from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.config.schema import LukasConfig
from bot.errors import LukasError, StartupError
from bot.images.caption_logic import template_caption
from bot.images.cost_logic import missing_price_reason, price_for
from bot.images.repo import UPLOAD_PENDING, UPLOAD_RUNNING
from bot.images.slots_logic import next_slot, slots_before
from bot.images.themes_logic import ImagePlan, plan_for_date, plan_sequence
from bot.store.models import GeneratedImage

HISTORY_SLOTS = 6  # how many earlier slots a dry run simulates to know last week's theme


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-10-30") from None


def register(commands: Any) -> None:
    image = commands.add_parser(
        "image",
        help="the weekly bear picture: preview a date, post one now, or retry kept uploads",
        description="Preview, make or re-post the weekly bear picture. Budget and prompt checks always apply.",
    )
    action = image.add_mutually_exclusive_group(required=True)
    action.add_argument("--dry-run", action="store_true", help="print the theme, occasion and prompt for a date")
    action.add_argument("--now", action="store_true", help="generate and post a picture right now")
    action.add_argument(
        "--retry-uploads",
        action="store_true",
        help="post kept pictures (weekly, and drawn on request) that Slack did not take",
    )
    image.add_argument("--date", type=_date, default=None, help="with --dry-run: the day to preview (YYYY-MM-DD)")
    image.add_argument(
        "--previous-theme", default=None, help="with --dry-run: last picture's theme (default: assume the schedule)"
    )
    image.add_argument("--config", default=None, help="config file (default: $LUKAS_CONFIG or ./config.yml)")
    image.set_defaults(handler=cmd_image)


def cmd_image(args: argparse.Namespace) -> int:
    if (args.date is not None or args.previous_theme is not None) and not args.dry_run:
        raise LukasError("--date and --previous-theme only go with --dry-run")
    from bot.settings import load_settings

    settings = load_settings()
    path = args.config or settings.config_path
    config = load_config(path)
    if args.dry_run:
        return dry_run(config, day=args.date, previous_theme=args.previous_theme, base_dir=Path(path).parent)
    live = LiveConfig(config, path=path)
    if not settings.bot_token:
        raise StartupError("SLACK_BOT_TOKEN is not set: Lukas needs it to post the picture")
    if args.now:
        return asyncio.run(_run_now(settings, live))
    return asyncio.run(_retry_uploads(settings, live))


# ----- --dry-run


def assumed_previous_theme(*, images: ImagesConfig, day: dt.date) -> str | None:
    """The theme the schedule would have given the slot before `day`, assuming every earlier week was posted."""
    zone = ZoneInfo(images.schedule.timezone)
    start_of_day = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    earlier = slots_before(schedule=images.schedule, moment=start_of_day, count=HISTORY_SLOTS)
    if not earlier:
        return None
    days = [slot.astimezone(zone).date() for slot in earlier]
    return plan_sequence(days=days, config=images)[-1].theme


def _check_line(config: LukasConfig, plan: ImagePlan, *, base_dir: Path) -> str:
    try:
        from bot.contracts import ContractEngine

        engine = ContractEngine.from_config(config.contracts, base_dir=base_dir)
        outcome = engine.check_image_prompt(plan.prompt)
    except Exception as exc:
        return f"could not run ({type(exc).__name__}: {exc})"
    if outcome.ok:
        return str(getattr(outcome.verdict, "value", outcome.verdict))
    return "REJECTED, no picture would be made: " + "; ".join(outcome.reasons or ["no reason given"])


def dry_run(config: LukasConfig, *, day: dt.date | None, previous_theme: str | None, base_dir: Path) -> int:
    images = config.images
    zone = ZoneInfo(images.schedule.timezone)
    today = dt.datetime.now(zone).date()
    day = day or today
    if previous_theme is not None and previous_theme not in images.themes:
        known = ", ".join(images.themes)
        raise LukasError(f"--previous-theme {previous_theme!r} is not a theme in images.themes ({known})")
    source = "given"
    if previous_theme is None:
        previous_theme = assumed_previous_theme(images=images, day=day)
        source = "assumed: the earlier scheduled pictures were posted as planned"
    plan = plan_for_date(day=day, config=images, previous_theme=previous_theme)
    price = price_for(config=images, model=images.model, size=images.size, quality=images.quality)
    if price is not None:
        price_text = f"${price:.3f} per picture (images.prices)"
    else:
        reason = missing_price_reason(config=images, model=images.model, size=images.size, quality=images.quality)
        price_text = f"NO PRICE, the run would fail: {reason}"
    upcoming = next_slot(schedule=images.schedule, now=dt.datetime.now(dt.UTC))
    lines = [
        f"Weekly bear picture for {day:%A %d %B %Y} (dry run: nothing is generated or posted)",
        f"  season:    {plan.season} ({images.hemisphere}ern hemisphere)",
        f"  occasion:  {plan.occasion or 'none'}",
        f"  theme:     {plan.theme}",
        f"  previous:  {previous_theme or 'none'} ({source})",
        f"  prompt:    {plan.prompt}",
        f"  checks:    {_check_line(config, plan, base_dir=base_dir)}",
        f"  model:     {images.model} {images.size} {images.quality}; {price_text}",
        f"  budget:    ${images.monthly_budget_usd:.2f} per month",
        f"  caption:   {template_caption(plan)} (template; Lukas writes his own when the chat model is up)",
        f"  channels:  {', '.join(images.channels) or 'none configured (images.channels): nothing would be posted'}",
        f"  schedule:  '{images.schedule.cron}' {images.schedule.timezone}"
        + (f"; next at {upcoming.astimezone(zone):%a %d %b %Y %H:%M %Z}" if upcoming and images.enabled else "")
        + ("" if images.enabled else " (images.enabled is false: not scheduled)"),
    ]
    print("\n".join(lines))
    return 0


# ----- --now and --retry-uploads


@dataclass
class _Services:
    """What the job needs, without bot.runtime (which loads the chat stack): a short-lived CLI process."""

    settings: Any
    config: LiveConfig
    engine: Any
    sessions: Any
    slack: Any
    alerter: Any
    contracts: Any

    async def close(self) -> None:
        await self.engine.dispose()


async def _services(settings: Any, live: LiveConfig) -> _Services:
    from bot.contracts.live import ContractsHolder
    from bot.slack.alerts import AdminAlerter
    from bot.slack.client import build_web_client
    from bot.store import migrate
    from bot.store.db import create_engine, session_factory

    await migrate.upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    slack = build_web_client(token=settings.bot_token, api_url=settings.slack_api_url)
    return _Services(
        settings=settings,
        config=live,
        engine=engine,
        sessions=session_factory(engine),
        slack=slack,
        alerter=AdminAlerter(client=slack, config=live),
        contracts=ContractsHolder(live),
    )


def _configure_logging(live: LiveConfig) -> None:
    from bot.logging_setup import configure_logging

    current = live.current.logging
    configure_logging(level=current.level, json_lines=current.json_lines)
    for noisy in ("alembic", "httpx2"):  # migrations and the SDK's request lines are not news to an admin here
        logging.getLogger(noisy).setLevel(logging.WARNING)


def describe_row(row: GeneratedImage) -> list[str]:
    lines = [
        f"status:    {row.status}",
        f"slot:      {row.slot_key}",
        f"theme:     {row.theme or '-'} (occasion: {row.occasion or 'none'})",
        f"prompt:    {row.prompt or '-'}",
        f"model:     {row.model} {row.size} {row.quality}; {row.attempts or 0} attempt(s); "
        f"cost ${float(row.cost_usd or 0):.3f}",
    ]
    if row.channel_id:
        lines.append(f"posted to: {row.channel_id}" + (f" ({row.slack_permalink})" if row.slack_permalink else ""))
    if row.local_path:
        lines.append(f"kept at:   {row.local_path} (this replica's data directory)")
    elif row.upload_state in (UPLOAD_PENDING, UPLOAD_RUNNING):
        lines.append("kept in:   the database, until Slack has it (any replica can post it)")
    if row.error:
        lines.append(f"reason:    {row.error}")
    return lines


async def _run_now(settings: Any, live: LiveConfig) -> int:
    from bot.images.caption_service import gateway_caption_writer
    from bot.images.factory import build_image_client, build_job
    from bot.runtime import build_services  # the chat gateway too: Lukas writes the caption himself
    from bot.store import migrate

    _configure_logging(live)
    await migrate.upgrade_async(settings.database_url)
    services = build_services(settings, live)
    client = build_image_client(settings, live)

    def progress(line: str) -> None:
        print(line, flush=True)  # as it goes: generating can take minutes

    job = build_job(services, image_client=client, caption_writer=gateway_caption_writer(services), progress=progress)
    progress("making a picture now (budget and prompt checks apply)…")
    try:
        row = await job.run_now()
    finally:
        await client.aclose()
        await services.gateway.aclose()
        await services.close()
    if row.channel_id:
        progress(f"uploaded to {len(row.channel_id.split(','))} channel(s)")
    print("\n".join(describe_row(row)))
    return 0 if row.status == "succeeded" else 1


async def _retry_uploads(settings: Any, live: LiveConfig) -> int:
    from bot.images.factory import build_job

    _configure_logging(live)
    services = await _services(settings, live)
    job = build_job(services)
    try:
        done = await job.retry_uploads()
    finally:
        await services.close()
    print(f"{done} kept picture(s) posted (weekly ones to every configured channel, requested ones in their thread)")
    return 0
