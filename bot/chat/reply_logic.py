"""Judging a reply's text before it goes out. Pure."""

from __future__ import annotations

# Characters that are only Markdown syntax: a reply made of these (and spaces) says nothing.
_MARKDOWN_PUNCTUATION = frozenset("*_~`#>-=+|[]()\\")


def join_parts(texts: list[str]) -> str:
    """A reply's text from the messages it was posted as (what is stored when only some of them got out)."""
    return "\n\n".join(texts)


def has_words(text: str) -> bool:
    """False for a reply made only of Markdown punctuation and whitespace (it would show as nothing)."""
    return any(not ch.isspace() and ch not in _MARKDOWN_PUNCTUATION for ch in text)
