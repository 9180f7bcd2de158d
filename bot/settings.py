"""Secrets and deployment settings from the environment (never from config.yml)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import StartupError
from bot.startup_logic import placeholder_problems

QUICKSTART = "docs/quickstart.md"
DEFAULT_DATA_DIR = "data"


def resolve_data_dir(*, env: Mapping[str, str], database_url: str | None) -> Path:
    """Where Lukas writes files (kept pictures): LUKAS_DATA_DIR, else the SQLite database's folder, else ./data.

    Never the config folder: in Docker that is mounted read-only, and paid pictures must survive until posted.
    """
    explicit = env.get("LUKAS_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if database_url and database_url.split(":", 1)[0].startswith("sqlite"):
        location = database_url.split(":///", 1)[1] if ":///" in database_url else ""
        location = location.split("?", 1)[0]
        if location and location != ":memory:":
            return Path(location).expanduser().parent
    return Path(DEFAULT_DATA_DIR)


@dataclass(frozen=True)
class Settings:
    bot_token: str | None
    signing_secret: str | None
    app_token: str | None
    slack_api_url: str | None
    openai_api_key: str | None
    openai_base_url: str | None
    database_url: str | None
    config_path: str
    port: int
    redis_url: str | None = None  # REDIS_URL: breakers and rate limits shared by every replica
    env: Mapping[str, str] = field(repr=False, default_factory=dict)
    data_dir: Path = Path(DEFAULT_DATA_DIR)  # see resolve_data_dir

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    def require_slack(self) -> None:
        """One message naming every missing variable, instead of a failure deep inside Bolt."""
        needed = ["SLACK_BOT_TOKEN"] + (["SLACK_APP_TOKEN"] if self.socket_mode else ["SLACK_SIGNING_SECRET"])
        values = {
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
            "SLACK_APP_TOKEN": self.app_token,
        }
        missing = [name for name in needed if not values[name]]
        if missing:
            mode = "Socket Mode (SLACK_APP_TOKEN is set)" if self.socket_mode else "HTTP mode (no SLACK_APP_TOKEN)"
            raise StartupError(
                f"missing environment variable(s) for {mode}: {', '.join(missing)}. "
                f"Set them in the environment (or a .env file your shell loads); see {QUICKSTART}, "
                "'Get the tokens'."
            )
        if self.bot_token and not self.bot_token.startswith("xoxb-"):
            raise StartupError(
                f"SLACK_BOT_TOKEN should start with 'xoxb-' (the Bot User OAuth Token); see {QUICKSTART}"
            )
        if self.app_token and not self.app_token.startswith("xapp-"):
            raise StartupError(f"SLACK_APP_TOKEN should start with 'xapp-' (an app-level token); see {QUICKSTART}")

    def refuse_placeholders(self) -> None:
        """A secret still holding .env.example's value (`xoxb-your-bot-token`) would only fail later, at Slack."""
        problems = placeholder_problems(self.env)
        if problems:
            raise StartupError("; ".join(problems))


def load_settings(env: Mapping[str, str] | None = None, *, port: int | None = None) -> Settings:
    source = os.environ if env is None else env
    raw_port = port if port is not None else source.get("PORT", "3000")
    try:
        port_number = int(raw_port)
    except ValueError:
        raise StartupError(f"PORT must be a number, got {raw_port!r}") from None
    return Settings(
        bot_token=source.get("SLACK_BOT_TOKEN") or None,
        signing_secret=source.get("SLACK_SIGNING_SECRET") or None,
        app_token=source.get("SLACK_APP_TOKEN") or None,
        slack_api_url=source.get("SLACK_API_URL") or None,
        openai_api_key=source.get("OPENAI_API_KEY") or None,
        openai_base_url=source.get("OPENAI_BASE_URL") or None,
        database_url=source.get("DATABASE_URL") or None,
        config_path=source.get("LUKAS_CONFIG", "config.yml"),
        port=port_number,
        redis_url=source.get("REDIS_URL") or None,
        env=dict(source),
        data_dir=resolve_data_dir(env=source, database_url=source.get("DATABASE_URL") or None),
    )
