"""What Slack would make of the bytes Lukas sends: the problems a reader would meet, for the invariant tests.

Written from Slack's formatting rules, independently of bot/slack/sanitise_logic.py, and deliberately stricter:
- `<…>` (no `<` or `>` inside) is a token. `<!…>` is a special command: only `<!date^ts^format|fallback>` without
  a link is harmless. `<@X…>` mentions X. `<#C…|label>` and `<url|label>` show a label that may not be the target.
  `&lt;` `&gt;` `&amp;` are escapes, never token delimiters.
- Outside tokens, the words @channel/@here/@everyone notify (Slack links names), after character references are
  decoded and Markdown backslash escapes dropped, unless a letter or digit touches them (an email address).
- In Markdown (`markdown_text`), `](` or `]:` is the only way to an inline link, an image or a reference definition,
  so any of them counts as a possible link whose label hides its target.
"""

from __future__ import annotations

import html
import re

_TOKEN = re.compile(r"<([^<>]*)>")
_WORD = re.compile(r"(?<![^\W_])@(channel|here|everyone)(?![^\W_])", re.IGNORECASE)
_BACKSLASH = re.compile(r"\\([!-/:-@\[-`{-~])")


def _bare(target: str) -> str:
    return re.sub(r"^(?:https?://|mailto:)", "", target.strip(), flags=re.IGNORECASE).rstrip("/").lower()


def _token_problem(content: str, participants: frozenset[str]) -> str | None:
    head = content.lstrip()
    if head.startswith("!"):
        command = head.split("|", 1)[0].split("^")
        if command[0] == "!date" and len(command) <= 3:
            return None
        return f"special mention <{content}>"
    if head.startswith("@"):
        user = head[1:].split("|", 1)[0]
        return None if user in participants else f"mention of {user!r}, not in the conversation"
    if head.startswith("#"):
        return f"channel link with a label <{content}>" if "|" in head else None
    if "|" in content:
        target, label = content.split("|", 1)
        if _bare(label) and _bare(label) != _bare(target):
            return f"link labelled {label!r} going to {target!r}"
    return None


def problems(sent: str, *, participants: frozenset[str] = frozenset(), markdown: bool = True) -> list[str]:
    """Everything in `sent` that would notify a crowd, ping a stranger or hide where a link goes."""
    found = [p for m in _TOKEN.finditer(sent) if (p := _token_problem(m.group(1), participants))]
    shown = html.unescape(_TOKEN.sub(" ", sent))
    if markdown:
        shown = _BACKSLASH.sub(r"\1", shown)
    found += [f"notifying word {m.group()!r}" for m in _WORD.finditer(shown)]
    if markdown:
        found += [f"possible Markdown link at {m.start()}" for m in re.finditer(r"\][(:]", sent)]
    return found
