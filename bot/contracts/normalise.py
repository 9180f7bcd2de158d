"""Unicode folding and banned-term matching, precompiled once per config.

Matching runs on a folded copy of the text (NFKC, casefold, accents stripped, look-alike letters and
leetspeak mapped) so the usual tricks do not slip past, and on whole words so "class" never matches
"ass" (the Scunthorpe problem). Spaced or punctuated spellings ("b a d w o r d", "b.a.d-word") are
joined back into words before the lookup. Folding is one `str.translate` over a lazily filled table,
and a set-based pre-filter keeps the common case (no banned term) to a few C-level calls.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

SPACE = " "  # every kind of whitespace folds to this
PUNCT = "."  # every other non-word character (punctuation, symbols, emoji) folds to this
AMBIGUOUS = "1"  # leet for both i and l: kept as is and expanded at lookup time

_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
# Letters that look like Latin ones (after casefold): Cyrillic, Greek, small capitals, a few Latin extras.
# Hand-picked (they win over the data below, which has a few odd pairs such as Greek iota -> "l").
_HAND_PICKED = {
    **dict(zip("авекмнорстухѕіїјԁһԛԝӏ", "abekmhopctyxsiijdhqwl", strict=True)),
    **dict(zip("αβεηικνορτυχγμωϲ", "abenikvoptuxyuwc", strict=True)),
    **dict(zip("ᴀʙᴄᴅᴇɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ", "abcdeghijklmnoprstuvwyz", strict=True)),
    **dict(zip("ıɑɩøđłɡ", "iaiodlg", strict=True)),
    "æ": "ae",
    "œ": "oe",
}


def _confusables_from_unicode() -> dict[str, str]:
    """Non-ASCII letters Unicode's confusables data (UTS #39, as shipped by the confusable-homoglyphs package)
    lists as look-alikes of one Latin letter or leet digit, keyed by their casefolded form."""
    try:
        raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return {}
    table: dict[str, str] = {}
    for char, entries in json.loads(raw).items():
        for entry in entries:
            pairs = ((char, entry.get("c", "")), (entry.get("c", ""), char))
            for source, target in pairs:
                if len(source) != 1 or len(target) != 1 or source.isascii() or not target.isascii():
                    continue
                key = unicodedata.normalize("NFKC", source).casefold()
                value = target.casefold()
                if len(key) == 1 and key.isalnum() and not key.isascii() and (value.isalpha() or value in _LEET):
                    table.setdefault(key, _LEET.get(value, value))
    return table


_CONFUSABLES = {**_confusables_from_unicode(), **_HAND_PICKED}
MAX_TERM_CHARS = 200
MAX_TERM_WORDS = 8
_MAX_TABLE = 65_536  # stop caching folds beyond this many distinct characters (memory bound)


def _fold_char(char: str) -> str:
    out = []
    for composed in unicodedata.normalize("NFKC", char).casefold():
        for part in unicodedata.normalize("NFKD", composed):
            if part in _LEET:
                out.append(_LEET[part])
            elif part.isspace():
                out.append(SPACE)
            elif (category := unicodedata.category(part))[0] == "M" or category == "Cf":
                continue  # accents and invisible characters (zero-width space, soft hyphen, ...)
            elif part.isalnum():
                out.append(_CONFUSABLES.get(part, part))
            else:
                out.append(PUNCT)
    return "".join(out)


class _FoldTable(dict):
    """code point -> folded string, computed on first sight; lets `str.translate` do the loop in C."""

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        if len(self) < _MAX_TABLE:
            self[code] = folded
        return folded


_TABLE = _FoldTable()


def fold(text: str) -> str:
    """The matching form of text: lower-case Latin-ish words separated by SPACE and PUNCT."""
    return text.translate(_TABLE)


def fold_offsets(text: str) -> list[int]:
    """For each character of fold(text), the index of the original character it came from."""
    offsets: list[int] = []
    for index, char in enumerate(text):
        offsets.extend([index] * len(_TABLE[ord(char)]))
    return offsets


def words_of(folded: str) -> list[str]:
    return folded.replace(PUNCT, SPACE).split()


def term_problem(term: object) -> str | None:
    """Why a banned term cannot be used (None if fine); the text is for admins, never for chat."""
    if not isinstance(term, str):
        return "is not text"
    if len(term) > MAX_TERM_CHARS:
        return f"is longer than {MAX_TERM_CHARS} characters"
    words = words_of(fold(term))
    if not words:
        return f"{term!r} has no letters or digits"
    if len(words) > MAX_TERM_WORDS:
        return f"has more than {MAX_TERM_WORDS} words"
    return None


def _variants(text: str) -> tuple[str, ...]:
    if AMBIGUOUS in text:
        return text, text.replace(AMBIGUOUS, "i"), text.replace(AMBIGUOUS, "l")
    return (text,)


_ATOM = re.compile(r"[^ .]+")
# A run of two or more one-character words: "b a d w o r d", "b-a-d".
_RUN = re.compile(r"(?<![^ .])[^ .](?![^ .])(?:[ .]+[^ .](?![^ .]))+")
_SOLO_WORDS = "ai"  # one-letter English words that may join a spelled-out run
_NO_SEPARATORS = str.maketrans("", "", SPACE + PUNCT)

Item = tuple[int, int, str]  # start, end (in folded text), folded word


@dataclass(frozen=True)
class BannedTermMatcher:
    """Precompiled banned terms. Never reports *which* term matched, so nothing can echo it."""

    phrases: frozenset[str]  # folded terms, words joined by one space (with 1 -> i / l variants)
    compact: frozenset[str]  # the same without spaces, for joined-up spellings
    triggers: frozenset[str]  # any word that can start a match: the pre-filter's lookup set
    max_words: int
    count: int

    @classmethod
    def compile(cls, terms: Iterable[str]) -> BannedTermMatcher:
        phrases: set[str] = set()
        compact: set[str] = set()
        triggers: set[str] = set()
        max_words = 1
        count = 0
        for term in terms:
            words = words_of(fold(term)) if isinstance(term, str) else []
            if not words:
                continue
            count += 1
            max_words = max(max_words, len(words))
            for variant in _variants(" ".join(words)):
                phrases.add(variant)
                compact.add(variant.replace(SPACE, ""))
                triggers.add(variant.split(SPACE, 1)[0])
        triggers |= compact
        return cls(frozenset(phrases), frozenset(compact), frozenset(triggers), max_words, count)

    def __bool__(self) -> bool:
        return self.count > 0

    def contains(self, text: str) -> bool:
        if not self.count or not text:
            return False
        folded = fold(text)
        return self._might_match(folded) and bool(self._scan(folded, first_only=True))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where banned terms are, in original-text coordinates, merged and sorted."""
        if not self.count or not text:
            return []
        folded = fold(text)
        if not self._might_match(folded):
            return []
        found = sorted(self._scan(folded, first_only=False))
        if not found:
            return []
        offsets = fold_offsets(text)
        merged: list[tuple[int, int]] = []
        for start, end in found:
            start, end = offsets[start], offsets[end - 1] + 1
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def mask(self, text: str, *, mask: str) -> tuple[str, int]:
        """text with every banned term replaced by mask, and how many were replaced."""
        spans = self.spans(text)
        if not spans:
            return text, 0
        parts, last = [], 0
        for start, end in spans:
            parts += [text[last:start], mask]
            last = end
        parts.append(text[last:])
        return "".join(parts), len(spans)

    def _might_match(self, folded: str) -> bool:
        """Cheap superset of _scan: any word, punctuation-joined word or one-letter run that could start a match."""
        if AMBIGUOUS in folded:
            return True
        if not self.triggers.isdisjoint(words_of(folded)):
            return True
        if PUNCT in folded and not self.triggers.isdisjoint(folded.replace(PUNCT, "").split()):
            return True
        compact = self.compact
        runs = {run.translate(_NO_SEPARATORS) for run in set(_RUN.findall(folded))}
        return any(_run_bounds(run, compact) for run in runs)

    def _scan(self, folded: str, *, first_only: bool) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        atoms = [(m.start(), m.end(), m.group()) for m in _ATOM.finditer(folded)]
        self._match_words(atoms, found, first_only)
        if found and first_only:
            return found
        if PUNCT in folded:
            self._match_words(_punct_joined(folded, atoms), found, first_only)
            if found and first_only:
                return found
        for run in _RUN.finditer(folded):
            bounds = _run_bounds(run.group().translate(_NO_SEPARATORS), self.compact)
            if bounds:
                letters = [m.start() + run.start() for m in _ATOM.finditer(run.group())]
                found.append((letters[bounds[0]], letters[bounds[1] - 1] + 1))
                if first_only:
                    return found
        return found

    def _match_words(self, items: list[Item], found: list[tuple[int, int]], first_only: bool) -> None:
        """Whole-word and phrase matches over one stream of words."""
        triggers, phrases, compact = self.triggers, self.phrases, self.compact
        for index, (start, _end, word) in enumerate(items):
            if word not in triggers and (AMBIGUOUS not in word or not any(v in triggers for v in _variants(word))):
                continue
            if any(v in phrases or v in compact for v in _variants(word)):
                found.append((start, items[index][1]))
                if first_only:
                    return
                continue
            for size in range(2, min(self.max_words, len(items) - index) + 1):
                phrase = " ".join(item[2] for item in items[index : index + size])
                if any(v in phrases for v in _variants(phrase)):
                    found.append((start, items[index + size - 1][1]))
                    if first_only:
                        return
                    break


def _punct_joined(folded: str, atoms: list[Item]) -> list[Item]:
    """Words glued back together where only punctuation separated them: "b.a.d-word" -> "badword"."""
    joined: list[Item] = []
    for start, end, word in atoms:
        if joined and SPACE not in folded[joined[-1][1] : start]:
            previous = joined[-1]
            joined[-1] = (previous[0], end, previous[2] + word)
        else:
            joined.append((start, end, word))
    return joined


def _run_bounds(letters: str, compact: frozenset[str]) -> tuple[int, int] | None:
    """Which slice of a one-letter run spells a term: all of it, or without a leading/trailing 'a'/'i'
    (a real word that joined the run: "you are a b a d w o r d")."""
    count = len(letters)
    lead = 1 if letters[0] in _SOLO_WORDS else 0
    tail = 1 if count > 1 and letters[-1] in _SOLO_WORDS else 0
    for first, last in ((0, count), (lead, count), (0, count - tail), (lead, count - tail)):
        if last <= first:
            continue
        word = letters[first:last]
        if word in compact or (AMBIGUOUS in word and any(v in compact for v in _variants(word))):
            return first, last
    return None
