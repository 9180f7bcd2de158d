"""Shape text for Slack: the one rendering function, and Markdown-aware splitting. Pure.

Lukas (and the model) write standard Markdown. Where a Web API method takes `markdown_text` (chat.postMessage,
chat.postEphemeral, chat.update, chat.startStream/appendStream/stopStream), Slack renders it itself; everywhere
else (a file's `initial_comment`, a slash command's ack and response_url) the text is converted to mrkdwn with
`markdown-to-mrkdwn`. Every outgoing text goes through `render`, once per call site, and `render` passes it
through the one output sanitiser first (bot.slack.sanitise_logic: no notifying mentions, no disguised links).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from markdown_to_mrkdwn import SlackMarkdownConverter

from bot.slack.sanitise_logic import neutralise_words, sanitise_outgoing

MARKDOWN_TEXT = "markdown_text"  # the Web API argument for standard Markdown
MARKDOWN_TEXT_LIMIT = 12_000  # Slack's limit for markdown_text
MRKDWN_FIELDS = frozenset({"text", "initial_comment"})  # arguments that take mrkdwn

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
# Spans a cut must never fall inside: links, Slack tokens (`<@U…>`, a date's fallback), bare URLs, inline code.
# Each kind is found on its own (spans may overlap): one alternation would let a code span or a URL swallow the
# Slack token inside it, and a hard cut could then split that token.
_UNBREAKABLE = tuple(
    re.compile(pattern) for pattern in (r"!?\[[^\]\n]*\]\([^)\s]*\)", r"<[^<>]*>", r"https?://\S+", r"`[^`\n]+`")
)
_BARE_AMPERSAND = re.compile(r"&(?!(?:lt|gt|amp);)")  # `&lt;` from the sanitiser is already an escape
_QUOTE_MARKERS = re.compile(r"^([ \t]*(?:&gt;[ \t]?)+)", re.MULTILINE)  # after escaping


def render(markdown: str, *, into: str, allowed_user_ids: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The keyword argument(s) that make Slack show `markdown` as a person expects, and nothing it must not.

    `into` is the Web API argument: `markdown_text` (passed through; Slack renders it), or `text` /
    `initial_comment` (converted to mrkdwn). Use as `client.chat_postMessage(channel=c, **render(t, into=...))`.
    User mentions survive only for `allowed_user_ids` (the people in the conversation).
    """
    if into != MARKDOWN_TEXT and into not in MRKDWN_FIELDS:
        raise ValueError(f"render: unknown Slack argument {into!r}")
    safe = sanitise_outgoing(markdown, allowed_user_ids=allowed_user_ids)
    return {MARKDOWN_TEXT: safe} if into == MARKDOWN_TEXT else {into: to_mrkdwn(safe)}


def to_mrkdwn(markdown: str) -> str:
    """Standard Markdown -> Slack mrkdwn, with `&`, `<` and `>` escaped as Slack requires (quote markers kept).

    The escapes the sanitiser wrote (`&lt;`) stay escapes. Every `<` is escaped before converting, so a `<` in the
    converter's output is one it made (it turns `[label](url)` into `<url|label>`): that is escaped too, and the
    words @channel/@here/@everyone are made inert again, so what Slack receives is as safe as the Markdown was.
    """
    escaped = _BARE_AMPERSAND.sub("&amp;", markdown).replace("<", "&lt;").replace(">", "&gt;")
    escaped = _QUOTE_MARKERS.sub(lambda m: m.group(1).replace("&gt;", ">"), escaped)
    converted = SlackMarkdownConverter().convert(escaped)  # the converter keeps state: one per text
    return neutralise_words(converted.replace("<", "&lt;"))


@dataclass(frozen=True)
class _Fence:
    opening: str  # the whole opening line, e.g. "```python"
    closing: str  # e.g. "```"


def _fence_at(text: str, position: int) -> _Fence | None:
    """The code fence open at `position` (None outside fences)."""
    open_fence: _Fence | None = None
    for line in text[:position].split("\n")[:-1]:  # the line cut at `position` is not complete
        match = _FENCE.match(line)
        if not match:
            continue
        marker = match.group(1)
        if open_fence is None:
            open_fence = _Fence(opening=line.strip(), closing=marker[0] * len(marker))
        elif marker.startswith(open_fence.closing) and marker[0] == marker[-1] and not match.group(2).strip():
            open_fence = None  # same character, at least as long, nothing after it
    return open_fence


def _protected(window: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for pattern in _UNBREAKABLE for m in pattern.finditer(window)]


def _cut_point(text: str, budget: int) -> int:
    """Where to end the next part: a paragraph, line, sentence or word boundary outside links and code spans."""
    window = text[:budget]
    spans = _protected(text[: budget + 2000])
    inside = [(start, end) for start, end in spans if start < budget < end]

    def allowed(cut: int) -> bool:
        return not any(start < cut < end for start, end in spans)

    for separator in ("\n\n", "\n", ". ", "! ", "? ", " "):
        position = window.rfind(separator)
        while position >= budget // 3:
            cut = position + len(separator)
            in_fence = separator not in ("\n\n", "\n") and _fence_at(text, cut) is not None
            if allowed(cut) and not in_fence:
                return cut
            position = window.rfind(separator, 0, position)
    starts = [start for start, _end in inside if start > 0]
    if starts:
        return max(starts)  # end just before the innermost link, token or code span the hard cut would break
    return budget


def split_message(text: str, *, limit: int) -> list[str]:
    """Split Markdown into parts of at most `limit` characters, each one valid on its own.

    Cuts at paragraph, then line, sentence and word boundaries, never inside a link or a code span. A code
    fence cut in two is closed at the end of one part and reopened (same language) at the start of the next;
    an unterminated fence at the very end is closed.
    """
    rest = text.strip()
    parts: list[str] = []
    while rest:
        if len(rest) <= limit:
            part, rest = rest, ""
        else:
            budget = limit
            while True:
                cut = _cut_point(rest, budget)
                fence = _fence_at(rest, cut)
                suffix = f"\n{fence.closing}" if fence else ""
                head = rest[:cut].rstrip()
                if len(head) + len(suffix) <= limit or budget <= limit // 2:
                    break
                budget -= max(len(suffix), 1)
            part = head + suffix
            rest = rest[cut:]
            if fence is None:
                rest = rest.lstrip()
            else:
                rest = rest.lstrip("\n")
                opening = fence.opening if len(fence.opening) <= limit // 4 else fence.closing
                rest = f"{opening}\n{rest}" if rest.strip() else ""
        if not rest:
            still_open = _fence_at(part + "\n", len(part) + 1)
            if still_open is not None:
                part += f"\n{still_open.closing}"
        if part.strip():
            parts.append(part)
    return parts
