"""Banned-term matching: Unicode tricks are caught, innocent words are not (the Scunthorpe problem)."""

from __future__ import annotations

import pytest

from bot.contracts.normalise import BannedTermMatcher, fold, term_problem

TERMS = ["badword", "ass", "kill", "evil plan", "lame"]


@pytest.fixture(scope="module")
def matcher() -> BannedTermMatcher:
    return BannedTermMatcher.compile(TERMS)


@pytest.mark.parametrize(
    "text",
    [
        "this is a badword",
        "BADWORD!",
        "BaDwOrD",
        "bádwörd",  # accents
        "bad\u0301word",  # a combining accent typed separately
        "ｂａｄｗｏｒｄ",  # fullwidth
        "𝐛𝐚𝐝𝐰𝐨𝐫𝐝",  # mathematical bold
        "ʙᴀᴅᴡᴏʀᴅ",  # small capitals
        "bаdwоrd",  # Cyrillic а and о
        "bαdwοrd",  # Greek α and ο
        "b4dw0rd",  # leetspeak
        "@ss",
        "a$$",
        "k1ll",  # 1 read as i
        "1ame",  # 1 read as l
        "b a d w o r d",  # spaced out
        "b.a.d-word",  # punctuated
        "b-a-d-w-o-r-d",
        "bad_word",
        "bad\u200bword",  # zero-width space
        "bad\u00adword",  # soft hyphen
        "you are a b a d w o r d",  # the article does not hide the run
        "an evil plan",  # phrase
        "an EVIL   plan!",
        "an evil-plan",
        "e v i l p l a n",
        "evilplan",
    ],
)
def test_tricks_are_caught(matcher: BannedTermMatcher, text: str) -> None:
    assert matcher.contains(text)


@pytest.mark.parametrize(
    "text",
    [
        "class",
        "assistant",
        "passion",
        "Scunthorpe",
        "skill",
        "killer whales",  # whole words only: 'killer' is not 'kill'
        "blame",
        "c l a s s",  # a spelled-out innocent word stays innocent
        "evil",  # half a phrase
        "plan evil",  # phrase words in the wrong order
        "bad word",  # two words are not the one-word term
        "",
        "🐻🍯",
        "1234",
    ],
)
def test_innocent_text_passes(matcher: BannedTermMatcher, text: str) -> None:
    assert not matcher.contains(text)


def test_terms_are_folded_too() -> None:
    """An admin may write terms with capitals, accents or look-alikes; they match plain spellings."""
    matcher = BannedTermMatcher.compile(["Crème Brûlée", "ΡΟΤ"])
    assert matcher.contains("I want creme brulee now")
    assert matcher.contains("pot")  # Greek capitals fold to Latin look-alikes
    assert not matcher.contains("cream")


def test_mask_replaces_the_original_characters(matcher: BannedTermMatcher) -> None:
    masked, count = matcher.mask("Well, b.a.d-word and ＢＡＤＷＯＲＤ — but a class act.", mask="***")
    assert masked == "Well, *** and *** — but a class act."
    assert count == 2


def test_mask_handles_a_phrase_and_a_spelled_run(matcher: BannedTermMatcher) -> None:
    masked, count = matcher.mask("you are a b a d w o r d with an evil  plan", mask="#")
    assert masked == "you are a # with an #"
    assert count == 2


def test_spans_point_into_the_original_text(matcher: BannedTermMatcher) -> None:
    text = "x bád\u200bwörd y"
    [(start, end)] = matcher.spans(text)
    assert text[start:end] == "bád\u200bwörd"


def test_empty_matcher_matches_nothing() -> None:
    empty = BannedTermMatcher.compile([])
    assert not empty
    assert not empty.contains("anything at all")
    assert empty.mask("anything", mask="*") == ("anything", 0)


def test_fold_separates_words_and_punctuation() -> None:
    assert fold("Héllo,\tWörld!") == "hello. world."
    assert fold("ＡＢＣ") == "abc"


@pytest.mark.parametrize(
    ("term", "problem"),
    [("", "has no letters or digits"), ("!!!", "has no letters or digits"), ("x" * 201, "longer than 200")],
)
def test_unusable_terms_are_explained(term: str, problem: str) -> None:
    assert problem in (term_problem(term) or "")


def test_usable_term_has_no_problem() -> None:
    assert term_problem("bad word") is None


def test_enormous_text_gets_an_answer(matcher: BannedTermMatcher) -> None:
    text = "lorem ipsum é ü 🐻 " * 50_000 + "badword"
    assert matcher.contains(text)
    assert not matcher.contains(text[:-7])
