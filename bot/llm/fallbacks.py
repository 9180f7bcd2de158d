"""In-character lines for when Lukas cannot (or must not) answer. Pure."""

from __future__ import annotations

import random


def pick_line(*, lines: list[str], last: str | None, rng: random.Random | None = None) -> str:
    """A random line, never the one this conversation got last time (when there is a choice)."""
    choices = [line for line in lines if line != last] or list(lines)
    return (rng or random).choice(choices)
