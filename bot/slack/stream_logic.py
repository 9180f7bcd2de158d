"""Decisions for a reply streamed into Slack. Pure: text and times in, what to show and when out."""

from __future__ import annotations

from dataclasses import dataclass

from bot.slack.format_logic import split_message


def visible_prefix(text: str, *, limit: int) -> str:
    """The part of a growing reply that may be shown now: whole words only, at most `limit` characters.

    The last word may still be growing ("the kra" -> "the kraken"), and the output checks judge whole words, so it
    waits for the next piece. Grows monotonically as `text` grows.
    """
    end = len(text)
    while end > 0 and not text[end - 1].isspace():
        end -= 1
    shown = text[:end]
    if len(shown) > limit:
        cut = shown.rfind(" ", 0, limit)
        shown = shown[: cut + 1] if cut > 0 else shown[:limit]
    return shown


def flush_delay(*, now: float, last_flush: float | None, interval: float) -> float:
    """Seconds until the next flush may go to Slack: the first one at once, the rest `interval` apart."""
    if last_flush is None:
        return 0.0
    return max(0.0, last_flush + interval - now)


@dataclass(frozen=True)
class Finish:
    """How a streamed message becomes the final reply.

    `append`: text to add when closing the stream (None: close without adding). `rewrite`: text the message must
    be set to afterwards with chat.update (None: it already shows the right text). `more`: further messages.
    """

    append: str | None
    rewrite: str | None
    more: tuple[str, ...]


def plan_finish(*, final: str, shown: str, streaming: bool, limit: int) -> Finish:
    """Closing a stream can only add text; anything else (a shortened or fixed reply, a reply too long for one
    message, an edited message) needs chat.update. Long replies continue in further messages."""
    parts = split_message(final, limit=limit) or [final]
    first, more = parts[0], tuple(parts[1:])
    if streaming and not more and final.startswith(shown):
        return Finish(append=final[len(shown) :], rewrite=None, more=())
    if streaming:
        return Finish(append=None, rewrite=first, more=more)
    return Finish(append=None, rewrite=first if first != shown else None, more=more)
