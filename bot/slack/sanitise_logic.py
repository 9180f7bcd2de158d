"""Make the model's text safe to post: it must not ping anyone it should not, nor hide where a link goes. Pure.

Runs on everything Lukas posts (replies, streamed prefixes, captions, admin DMs) before it is rendered for Slack:
- special mentions `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^ID|@team>` become plain text that cannot
  notify ("@\u2060here": a word joiner after the @), and so do the literal words "@channel", "@here", "@everyone"
  (they notify when Slack links names; the joiner keeps them readable but inert);
- user mentions `<@U…>` stay only for people in the conversation; anyone else becomes their label or "someone";
- links show their real target: `<https://evil|harmless>` and `[harmless](https://evil)` become
  "harmless (https://evil)"; a label that is the URL itself is shown once.
Channel links `<#C…>` and dates `<!date^…>` notify nobody and stay.
"""

from __future__ import annotations

import re

JOINER = "\u2060"  # WORD JOINER: invisible, and breaks the @word Slack would otherwise link
SOMEONE = "someone"

_SPECIAL = re.compile(r"<!(channel|here|everyone|group)(?:\|[^<>]*)?>", re.IGNORECASE)
_SUBTEAM = re.compile(r"<!subteam\^[A-Za-z0-9]+(?:\|([^<>]*))?>")
_OTHER_BANG = re.compile(r"<!(?!date\^)[^<>]*>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^<>]*))?>")
_SLACK_LINK = re.compile(r"<((?:https?|mailto|ftp|tel|slack):[^<>|\s]*)(?:\|([^<>]*))?>", re.IGNORECASE)
_MD_LINK = re.compile(r"(!?)\[([^\[\]\n]*)\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_LITERAL = re.compile(r"(?<![\w@])@(channel|here|everyone)\b", re.IGNORECASE)
# The start of a mention or link whose end has not arrived yet (a streamed prefix): held back until it has.
_OPEN_TAIL = re.compile(r"(?:<[!@#]?[^<>\s]*(?:\|[^<>]*)?|\[[^\[\]\n]*(?:\]\([^()\s]*)?|\]\([^()\s]*)$")


def _inert(word: str) -> str:
    return f"@{JOINER}{word.lstrip('@')}"


def _same_target(label: str, url: str) -> bool:
    bare = re.sub(r"^(?:https?://|mailto:)", "", url, flags=re.IGNORECASE).rstrip("/")
    shown = re.sub(r"^(?:https?://|mailto:)", "", label.strip(), flags=re.IGNORECASE).rstrip("/")
    return not shown or shown.lower() == bare.lower()


def _link(label: str | None, url: str) -> str:
    label = (label or "").strip()
    if not label or _same_target(label, url):
        return url
    return f"{label} ({url})"


def sanitise_outgoing(text: str, *, allowed_user_ids: frozenset[str]) -> str:
    """The text with notifying mentions neutralised, foreign user mentions dropped and every link's target shown."""
    if not text:
        return text
    if "<" in text:
        text = _SPECIAL.sub(lambda m: _inert(m.group(1).lower()), text)
        text = _SUBTEAM.sub(lambda m: _inert(m.group(1) or "team"), text)
        text = _OTHER_BANG.sub("", text)
        text = _USER.sub(
            lambda m: f"<@{m.group(1)}>" if m.group(1) in allowed_user_ids else (m.group(2) or SOMEONE).lstrip("@"),
            text,
        )
        text = _SLACK_LINK.sub(lambda m: _link(m.group(2), m.group(1)), text)
    if "](" in text:
        text = _MD_LINK.sub(lambda m: _link(m.group(2), m.group(3)), text)
    if "@" in text:
        text = _LITERAL.sub(lambda m: _inert(m.group(1)), text)
    return text


def sanitise_prefix(text: str, *, allowed_user_ids: frozenset[str]) -> str:
    """A streamed prefix, sanitised, without a trailing mention or link that is not complete yet."""
    open_tail = _OPEN_TAIL.search(text)
    if open_tail is not None:
        text = text[: open_tail.start()]
    return sanitise_outgoing(text, allowed_user_ids=allowed_user_ids)
