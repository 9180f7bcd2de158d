"""The `lukas` command (also `python -m bot`). Admin mistakes print a clear message and exit 1, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

import bot
from bot.admin.cli import register as register_admin_commands
from bot.config.live import LiveConfig
from bot.config.loader import default_config_path, load_config, read_raw_config, summarize
from bot.config.provider_check_logic import file_check
from bot.errors import ConfigError, LukasError
from bot.images.cli import register as register_image_commands
from bot.llm.provider_probe import check_chain, lukas_extras, missing_extras, require_installed, require_keys
from bot.settings import Settings, load_settings
from bot.store.backup_cli import register as register_backup_commands

Handler = Callable[[argparse.Namespace], int]


def _print_config_error(error: ConfigError) -> None:
    print(f"config error in {error.path or 'config.yml'}:", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)
    print("Nothing was changed. Fix the lines above and run `lukas config check` again.", file=sys.stderr)


def cmd_config_check(args: argparse.Namespace) -> int:
    """The file against the schema and the installed providers. A key missing from this environment is only a
    warning (the pre-commit hook and CI check the file), unless --env: then the environment is checked as
    `lukas run` checks it (Slack tokens, example values, every chat model's key)."""
    from pathlib import Path

    from bot.contracts import ContractEngine

    path = args.path or default_config_path()
    config = load_config(path)
    try:
        ContractEngine.from_config(config.contracts, base_dir=Path(path).parent)  # reads banned_terms_file
    except ConfigError as error:
        raise ConfigError(error.problems, path=str(path)) from None
    findings = check_chain(config)  # issue 18: can every chat model actually be used?
    if not args.env:
        findings = file_check(findings)
    for finding in findings:
        if finding.level == "warning":
            print(f"warning: {finding.line()}", file=sys.stderr)
    errors = [finding.line() for finding in findings if finding.level == "error"]
    if errors:
        raise ConfigError(errors, path=str(path))
    if args.env:
        _require_environment(load_settings())
    print(f"{path}: OK")
    for line in summarize(config):
        print(f"  {line}")
    print("  chat models:")
    for finding in findings:
        print(f"    {'warning: ' if finding.level == 'warning' else ''}{finding.line()}")
    return 0


def cmd_config_extras(args: argparse.Namespace) -> int:
    """Which pyproject extras this config needs (install scripts call this with only the base install)."""
    from bot.config.provider_check_logic import needed_extras

    path = args.path or default_config_path()
    extras = needed_extras(raw_config=read_raw_config(path), extras=lukas_extras())
    if args.missing:
        extras = missing_extras(extras)
    print(" ".join(extras))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.store import migrate
    from bot.store.db import redacted, resolve_url
    from bot.store.migrate_logic import CHECK_EXIT_CODES, describe_state, upgrade_outcome

    url = resolve_url(args.database_url)
    state, before, head = asyncio.run(migrate.schema_status(url))
    if args.check:
        print(f"database:       {redacted(url)}")
        print(f"its revision:   {before or '(none: no Lukas tables)'}")
        print(f"code's newest:  {head or '(unknown)'}")
        print(describe_state(state=state, database=before, head=head))
        return CHECK_EXIT_CODES[state]
    if state == "ahead":  # a rolling upgrade: a newer Lukas migrated first; nothing to do, never downgrade
        print(f"warning: {describe_state(state=state, database=before, head=head)}", file=sys.stderr)
        return 0
    migrate.upgrade(url)
    after = asyncio.run(migrate.database_revision(url))
    print(f"{upgrade_outcome(before=before, after=after)}: {redacted(url)}")
    return 0


def _require_environment(settings: Settings) -> None:
    settings.require_slack()
    settings.refuse_placeholders()


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings(port=args.port)
    _require_environment(settings)
    path = args.config or settings.config_path
    config = load_config(path)
    require_installed(config, path=str(path))  # a missing provider SDK stops here, before anything touches Slack
    require_keys(config)
    live = LiveConfig(config, path=path)
    from bot.startup import serve  # heavy (any-llm, Bolt): only once the admin's settings are known to be good

    asyncio.run(serve(settings, live, upgrade=not args.no_upgrade))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lukas", description="Lukas the Bear, the research team's Slack bot.")
    parser.add_argument("--version", action="version", version=f"lukas {bot.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="connect to Slack and chat (Socket Mode if SLACK_APP_TOKEN is set)")
    run.add_argument("--port", type=int, default=None, help="HTTP mode port (default: $PORT or 3000)")
    run.add_argument("--config", default=None, help="config file (default: $LUKAS_CONFIG or ./config.yml)")
    run.add_argument("--no-upgrade", action="store_true", help="do not apply database migrations on start")
    run.set_defaults(handler=cmd_run)

    config = commands.add_parser("config", help="work with config.yml")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_commands.add_parser("check", help="validate a config file and print a summary")
    check.add_argument("path", nargs="?", default=None)
    check.add_argument(
        "--env", action="store_true", help="also check the environment as `lukas run` does (tokens, API keys)"
    )
    check.set_defaults(handler=cmd_config_check)
    extras = config_commands.add_parser(
        "extras", help="print the pyproject extras (provider SDKs) the config's chat models need"
    )
    extras.add_argument("path", nargs="?", default=None)
    extras.add_argument("--missing", action="store_true", help="only those not installed yet")
    extras.set_defaults(handler=cmd_config_extras)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply migrations ($DATABASE_URL, default ./data/lukas.db)")
    upgrade.add_argument("--database-url", default=None, help=argparse.SUPPRESS)
    upgrade.add_argument(
        "--check",
        action="store_true",
        help="change nothing; say whether the database and this Lukas agree. Exit 0: they agree; 3: the database "
        "is new or behind (run `lukas db upgrade`); 4: it is ahead (a newer Lukas migrated it); 5: cannot tell",
    )
    upgrade.set_defaults(handler=cmd_db_upgrade)

    register_backup_commands(commands)
    register_image_commands(commands)
    register_admin_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except ConfigError as error:
        _print_config_error(error)
        return 1
    except LukasError as error:
        print(f"lukas: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
