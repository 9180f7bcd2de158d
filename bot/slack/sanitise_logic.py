"""Make the model's text safe to post: it must not ping anyone it should not, nor hide where a link goes. Pure.

Runs on everything Lukas posts (replies, streamed prefixes, captions, admin DMs) before it is rendered for Slack.
Slack reads `<…>` as a token (`<!channel>`, `<@U…>`, `<#C…>`, `<url|label>`), `&lt;` `&gt;` `&amp;` as escapes, and
Markdown's `[label](url)` as a link. The sanitiser never deletes a span (deleting `<!a>` from `<<!a>!channel>` once
joined its neighbours into a new token); it rewrites in four passes, each unable to create what an earlier one
removed, so the result is final and sanitising it again changes nothing:
1. Markdown links `[label](url)` and images (found by a bracket-balancing scanner, nested brackets, `<url>`
   destinations and titles included) become "label (url)"; a label that is the URL itself is shown once.
2. Every `<` that does not open an allowed token is escaped as `&lt;`. Allowed: `<@U…>` of people in the
   conversation, `<#C…>` channel links, `<!date^ts^format|fallback>` without a link. Notifying tokens become plain
   text: `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>` -> "@\u2060here" (a word joiner after the @);
   anyone else's `<@U…>` -> their label or "someone"; `<url|label>` -> "label (url)"; `<url>` -> url. Character
   references other than the three escapes (`&#64;` is an @) are escaped too.
3. The words "@channel", "@here", "@everyone" (they notify when Slack links names) get the joiner, also in `_…_`.
4. Any `](` or `]:` still left (a link formed by passes 1-2, a reference definition) gets the joiner between its
   characters, so no Markdown link can form; it is invisible.
"""

from __future__ import annotations

import re

JOINER = "\u2060"  # WORD JOINER: invisible, and breaks the @word Slack would otherwise link
SOMEONE = "someone"

_TOKEN = re.compile(r"<([^<>]*)>|<")
_SPECIAL = re.compile(r"!(channel|here|everyone|group)(?:\|.*)?", re.IGNORECASE | re.DOTALL)
_SUBTEAM = re.compile(r"!subteam\^[A-Za-z0-9]+(?:\|(.*))?", re.DOTALL)
# A date without a link (no third ^), in words no later pass rewrites (so a second sanitising keeps it), and no
# backtick (a code fence inside a kept token would be split and closed there, and the posted part then differs
# from what is stored) nor a slash in its format (no URL-like text rides along in the token).
_DATE = re.compile(r"!date\^[0-9]{1,12}\^[^^|\[\]@&\n`/]{0,80}(?:\|[^^|\[\]@&\n`]{0,80})?")
_USER = re.compile(r"@([UW][A-Z0-9]+)(?:\|(.*))?", re.DOTALL)
_CHANNEL = re.compile(r"#([CG][A-Z0-9]+)(?:\|.*)?", re.DOTALL)
_URL = re.compile(r"(?:https?|mailto|ftp|tel|slack):\S*", re.IGNORECASE)
_REFERENCE = re.compile(r"&(?!(?:lt|gt|amp);)(?=#?[A-Za-z0-9]+;)")  # a character reference Slack would not keep
_LITERAL = re.compile(r"(?<![^\W_])@(channel|here|everyone)(?![^\W_])", re.IGNORECASE)
_LINK_JOINT = re.compile(r"\](?=[(:])")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*$", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")
_BRACKET = re.compile(r"\\.|[\[\]]", re.DOTALL)
_NESTING = 8  # links inside link labels converted this deep
_RAW_DESTINATION = re.compile(r"[^\s\x00-\x1f]{0,500}")  # a longer URL is left for pass 4
_PARENS_DEEP = 32  # CommonMark's own limit on nested parentheses in a destination
_PAREN = re.compile(r"\\.|[()]")
_TITLE_END = {'"': '"', "'": "'", "(": ")"}
# The start of a mention or link whose end has not arrived yet (a streamed prefix): held back until it has.
_TAIL_LIMIT = 600  # a longer unfinished link is shown as it stands (safe, as everything shown: sanitised)
_DESTINATION_SO_FAR = r"\((?:<[^<>\n]*>?|\S*)(?:\s+(?:\"[^\"\n]*|'[^'\n]*))?"
_OPEN_TAIL = re.compile(
    r"(?:<[!@#]?[^<>\s]*(?:\|[^<>]*)?"
    r"|!?\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*(?:\[[^\[\]\n]*|\](?:" + _DESTINATION_SO_FAR + r")?)?"
    r"|\]" + _DESTINATION_SO_FAR + r")$"
)


def _inert(word: str) -> str:
    return f"@{JOINER}{word.lstrip('@')}"


def _same_target(label: str, url: str) -> bool:
    bare = re.sub(r"^(?:https?://|mailto:)", "", url, flags=re.IGNORECASE).rstrip("/")
    shown = re.sub(r"^(?:https?://|mailto:)", "", label.strip(), flags=re.IGNORECASE).rstrip("/")
    return not shown or shown.lower() == bare.lower()


def _link(label: str | None, url: str) -> str:
    label, url = (label or "").strip(), url.strip()
    if not url:
        return label
    if not label or _same_target(label, url):
        return url
    return f"{label} ({url})"


# ----- pass 1: Markdown links, with a scanner that balances brackets as CommonMark does


def _code_ranges(text: str) -> list[tuple[int, int]]:
    """Fenced blocks and code spans: no link forms there, so pass 1 leaves them alone (pass 4 still applies)."""
    ranges: list[tuple[int, int]] = []
    fence: tuple[int, str] | None = None
    for match in _FENCE.finditer(text):
        marker = match.group(1)
        if fence is None:
            fence = (match.start(), marker)
        elif marker[0] == fence[1][0] and len(marker) >= len(fence[1]) and not match.group(0).strip(" `~"):
            ranges.append((fence[0], match.end()))
            fence = None
    if fence is not None:
        ranges.append((fence[0], len(text)))
    position = 0
    for start, end in [*ranges, (len(text), len(text))]:
        ranges += _code_spans(text, position, start)
        position = end
    return sorted(ranges)


def _code_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Code spans between `start` and `end`: a run of backticks up to the next run of the same length."""
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text, start, end)]
    following: list[int | None] = [None] * len(runs)
    last: dict[int, int] = {}
    for index in range(len(runs) - 1, -1, -1):
        length = runs[index][1] - runs[index][0]
        following[index], last[length] = last.get(length), index
    spans, index = [], 0
    while index < len(runs):
        closing = following[index]
        if closing is None:
            index += 1
            continue
        spans.append((runs[index][0], runs[closing][1]))
        index = closing + 1
    return spans


def _closing_brackets(text: str, code: list[tuple[int, int]]) -> dict[int, int]:
    """Each `[` outside code mapped to the `]` that balances it (backslash escapes respected)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    blocks = iter(code)
    block = next(blocks, None)
    for match in _BRACKET.finditer(text):
        index = match.start()
        while block is not None and index >= block[1]:
            block = next(blocks, None)
        if (block is not None and block[0] <= index) or match.group() not in "[]":
            continue
        if match.group() == "[":
            stack.append(index)
        elif stack:
            pairs[stack.pop()] = index
    return pairs


def _destination(text: str, start: int) -> tuple[str, int] | None:
    """The link destination and title after `](` at `start`: (url, index after the closing `)`), or None."""
    index = start
    while index < len(text) and text[index] in " \t\n":
        index += 1
    if text.startswith("<", index):
        end = text.find(">", index)
        if end < 0 or "\n" in text[index:end] or "<" in text[index + 1 : end]:
            return None
        url, index = text[index + 1 : end], end + 1
    else:
        run = _RAW_DESTINATION.match(text, index)
        assert run is not None  # the pattern matches the empty string
        depth, end = 0, run.end()
        for paren in _PAREN.finditer(text, index, end):
            if paren.group() == "(":
                depth += 1
                if depth > _PARENS_DEEP:
                    return None
            elif paren.group() == ")":
                if depth == 0:
                    end = paren.start()
                    break
                depth -= 1
        else:
            if depth:
                return None
        url, index = text[index:end], end
    gap = index
    while index < len(text) and text[index] in " \t\n":
        index += 1
    if index > gap and text[index : index + 1] in _TITLE_END:
        end = text.find(_TITLE_END[text[index]], index + 1)
        if end < 0 or "\n\n" in text[index:end]:
            return None
        index = end + 1
        while index < len(text) and text[index] in " \t\n":
            index += 1
    if text[index : index + 1] != ")":
        return None
    return url, index + 1


def _markdown_links(text: str, depth: int = 0) -> str:
    """Each link and image as "label (url)"; links in labels too, a few levels deep (pass 4 breaks the rest)."""
    if "](" not in text or depth > _NESTING:
        return text
    pairs = _closing_brackets(text, _code_ranges(text))
    out: list[str] = []
    position = 0
    for opening in sorted(pairs):
        closing = pairs[opening]
        if opening < position or text[closing + 1 : closing + 2] != "(":
            continue
        found = _destination(text, closing + 2)
        if found is None:
            continue
        url, end = found
        start = opening - 1 if opening > position and text[opening - 1] == "!" else opening
        out += [text[position:start], _link(_markdown_links(text[opening + 1 : closing], depth + 1), url)]
        position = end
    return "".join(out) + text[position:]


# ----- pass 2: Slack's tokens


def _token(match: re.Match[str], allowed_user_ids: frozenset[str]) -> str:
    content = match.group(1)
    if content is None:
        return "&lt;"  # a `<` that opens nothing stays text, and can never pair with a later `>`
    if content.startswith("!"):
        if special := _SPECIAL.fullmatch(content):
            return _inert(special.group(1).lower())
        if subteam := _SUBTEAM.fullmatch(content):
            return _inert((subteam.group(1) or "").strip().lstrip("@") or "team")
        if _DATE.fullmatch(content):
            return f"<{content}>"
    elif content.startswith("@"):
        if user := _USER.fullmatch(content):
            if user.group(1) in allowed_user_ids:
                return f"<@{user.group(1)}>"
            return (user.group(2) or "").strip().lstrip("@") or SOMEONE
    elif content.startswith("#"):
        if channel := _CHANNEL.fullmatch(content):
            return f"<#{channel.group(1)}>"
    elif "|" in content:
        url, label = content.split("|", 1)
        return _link(label, url)
    elif _URL.fullmatch(content):
        return content
    return f"&lt;{content}>"


def neutralise_words(text: str) -> str:
    """The words @channel, @here and @everyone with a word joiner after the @: readable, and they notify nobody."""
    return _LITERAL.sub(lambda m: _inert(m.group(1)), text) if "@" in text else text


def sanitise_outgoing(text: str, *, allowed_user_ids: frozenset[str]) -> str:
    """The text with notifying mentions neutralised, foreign user mentions dropped and every link's target shown.

    Idempotent: `sanitise_outgoing(sanitise_outgoing(t)) == sanitise_outgoing(t)`.
    """
    if not text:
        return text
    text = _markdown_links(text)
    if "<" in text:
        text = _TOKEN.sub(lambda m: _token(m, allowed_user_ids), text)
    if "&" in text:
        text = _REFERENCE.sub("&amp;", text)
    text = neutralise_words(text)
    if "]" in text:
        text = _LINK_JOINT.sub("]" + JOINER, text)
    return text


def sanitise_prefix(text: str, *, allowed_user_ids: frozenset[str]) -> str:
    """A streamed prefix, sanitised, without a trailing mention or link that is not complete yet."""
    open_tail = _OPEN_TAIL.search(text, max(0, len(text) - _TAIL_LIMIT))
    if open_tail is not None:
        text = text[: open_tail.start()]
    return sanitise_outgoing(text, allowed_user_ids=allowed_user_ids)
