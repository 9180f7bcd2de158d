"""`/lukas` text -> a command, or a helpful answer. Pure: no Slack, no database."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

HELP = "help"
STATUS = "status"
USAGE = "usage"
RELOAD = "reload"
IMAGE_NOW = "image now"
FORGET = "forget"
FORGET_CONFIRM = "forget confirm"
DRAW = "draw"
COMMANDS = (HELP, STATUS, USAGE, RELOAD, IMAGE_NOW, FORGET, DRAW)
OPEN_TO_EVERYONE = frozenset({HELP, FORGET, FORGET_CONFIRM, DRAW})

DEFAULT_DAYS = 7
MAX_DAYS = 366

DENIED = "Sorry, only my keepers can use that one 🐻 (`/lukas help` is open to everyone, though!)"
UNIDENTIFIED = "Hmm, I couldn't tell who asked, so I didn't do anything 🐻 Please try again in a moment!"
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")  # what Slack's user ids look like ('U012AB3CD', 'W0ENTERPRISE')


@dataclass(frozen=True)
class Command:
    name: str
    days: int | None = None  # usage only
    idea: str | None = None  # draw only ("" = anything)


@dataclass(frozen=True)
class ParseError:
    message: str


def help_text(*, is_admin: bool) -> str:
    lines = [
        "**Hi, I'm Lukas** 🐻 DM me or @mention me in a channel to chat. `/lukas` commands:",
        "• `/lukas help` — this list",
        "• `/lukas status` — version, uptime, model, breaker, database, last picture and next run",
        f"• `/lukas usage [days]` — messages, model calls, tokens and cost by provider and model, pictures, "
        f"and this month against the budgets (default {DEFAULT_DAYS} days)",
        "• `/lukas reload` — re-read config.yml now (valid edits also apply by themselves within seconds)",
        "• `/lukas image now` — make and post a picture right away (budget and checks apply)",
        "• `/lukas forget` — erase what I stored of your own messages (asks you to confirm first)",
        "• `/lukas draw <idea>` — I draw a picture of myself for you, e.g. `/lukas draw yourself at the beach`",
    ]
    if not is_admin:
        lines.append("_All but `help`, `forget` and `draw` are for the admins listed in config.yml._")
    return "\n".join(lines)


def _days(words: list[str]) -> int | ParseError:
    if words and words[0] == "--days":
        words = words[1:]
    if not words:
        return DEFAULT_DAYS
    if len(words) > 1:
        return ParseError(f"`usage` takes one number of days, e.g. `/lukas usage 30` (got `{' '.join(words)}`)")
    text = words[0].lower().removesuffix("days").removesuffix("day").removesuffix("d")
    if not text.isdigit():
        return ParseError(f"`{words[0]}` is not a number of days; try `/lukas usage 30`")
    days = int(text)
    if not 1 <= days <= MAX_DAYS:
        return ParseError(f"days must be between 1 and {MAX_DAYS} (got {days})")
    return days


def parse_command(text: str | None) -> Command | ParseError:
    """Parse what followed `/lukas`. Case and extra spaces do not matter."""
    words = (text or "").strip().lower().split()
    if not words:
        return Command(HELP)
    head, rest = words[0], words[1:]
    if head == DRAW:
        return Command(DRAW, idea=(text or "").strip()[len(DRAW) :].strip())
    if head in (HELP, "-h", "--help", "?"):
        return Command(HELP)
    if head == USAGE:
        days = _days(rest)
        return days if isinstance(days, ParseError) else Command(USAGE, days=days)
    if head == "image":
        if rest == ["now"]:
            return Command(IMAGE_NOW)
        return ParseError("did you mean `/lukas image now`? (it makes and posts a picture right away)")
    if head == FORGET:
        if not rest:
            return Command(FORGET)
        if rest == ["confirm"]:
            return Command(FORGET_CONFIRM)
        return ParseError("`forget` erases your own messages: `/lukas forget`, then `/lukas forget confirm`")
    if head in (STATUS, RELOAD):
        if rest:
            return ParseError(f"`{head}` takes no arguments; try `/lukas {head}`")
        return Command(head)
    known = [HELP, STATUS, USAGE, RELOAD, "image", FORGET, DRAW]
    close = difflib.get_close_matches(head, known, n=1, cutoff=0.6)
    hint = f" Did you mean `/lukas {'image now' if close[0] == 'image' else close[0]}`?" if close else ""
    return ParseError(
        f"I don't know `{head}`.{hint} I understand: {', '.join(f'`{c}`' for c in COMMANDS)} (`/lukas help`)."
    )


def identified(user_id: object) -> str | None:
    """The asker's Slack user id, or None when the command carries none that looks like one. Every command needs
    it (forget erases *this* person's words, admin commands check it): without it nothing runs (fail closed)."""
    return user_id if isinstance(user_id, str) and SLACK_USER_ID.fullmatch(user_id) else None


def may_run(*, command: Command, user_id: str | None, admins: list[str]) -> bool:
    """Only an identified person runs anything; admin commands need one listed in config.yml's admins."""
    who = identified(user_id)
    return who is not None and (command.name in OPEN_TO_EVERYONE or who in admins)
