"""The output sanitiser: nothing Lukas posts can notify a crowd, ping a stranger or hide a link's target."""

from __future__ import annotations

import pytest

from bot.slack.sanitise_logic import JOINER, sanitise_outgoing, sanitise_prefix

PEOPLE = frozenset({"U0ANNA", "U0BEN"})


def clean(text: str) -> str:
    return sanitise_outgoing(text, allowed_user_ids=PEOPLE)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("<!channel>", "channel"),
        ("<!here>", "here"),
        ("<!here|here>", "here"),
        ("<!everyone>", "everyone"),
        ("<!CHANNEL>", "channel"),
        ("<!subteam^S012AB3CD|@research>", "research"),
        ("<!subteam^S012AB3CD>", "team"),
        ("@channel", "channel"),
        ("@here", "here"),
        ("@everyone", "everyone"),
    ],
)
def test_special_mentions_become_plain_text_that_cannot_notify(raw: str, shown: str) -> None:
    out = clean(f"Hey {raw}, honey time!")
    assert out == f"Hey @{JOINER}{shown}, honey time!"
    assert "<!" not in out and "@channel" not in out and "@here" not in out and "@everyone" not in out


def test_user_mentions_stay_only_for_people_in_the_conversation() -> None:
    out = clean("Hi <@U0ANNA>, <@U0BEN|ben>, <@U0EVE> and <@W0BOSS|boss>!")
    assert out == "Hi <@U0ANNA>, <@U0BEN>, someone and boss!"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("<https://evil.example/login|docs.python.org>", "docs.python.org (https://evil.example/login)"),
        ("<https://evil.example/login|click here>", "click here (https://evil.example/login)"),
        ("<https://honey.example/>", "https://honey.example/"),
        ("<https://honey.example|https://honey.example>", "https://honey.example"),
        ("<mailto:a@b.example|Anna>", "Anna (mailto:a@b.example)"),
        ("[the docs](https://evil.example/x)", "the docs (https://evil.example/x)"),
        ("[https://honey.example](https://honey.example)", "https://honey.example"),
    ],
)
def test_links_show_their_real_target(raw: str, shown: str) -> None:
    assert clean(f"See {raw} now") == f"See {shown} now"


def test_ordinary_text_channel_links_and_dates_are_left_alone() -> None:
    text = "3 < 4 and 5 > 2; email anna@here.example; see <#C0GENERAL> on <!date^1392734382^{date}|Feb 18>"
    assert clean(text) == text


def test_a_reply_of_nothing_but_mentions_is_harmless_text() -> None:
    out = clean("<!channel> <!here> <!everyone> <@U0EVE> <!subteam^S1>")
    assert "<" not in out
    assert out.replace(JOINER, "") == "@channel @here @everyone someone @team"


def test_sanitising_twice_changes_nothing() -> None:
    text = "<!channel> [a](https://x.example) <@U0EVE> @here"
    assert clean(clean(text)) == clean(text)


@pytest.mark.parametrize(
    "prefix", ["Hello <!chan", "Hello <@U0AN", "Hello <https://evil.example|doc", "Hello [doc](https://ev"]
)
def test_streamed_prefixes_hold_back_an_unfinished_mention_or_link(prefix: str) -> None:
    assert sanitise_prefix(prefix, allowed_user_ids=PEOPLE) == "Hello "


def test_streamed_prefix_with_complete_tokens_is_sanitised() -> None:
    assert sanitise_prefix("Hi <!here> and", allowed_user_ids=PEOPLE) == f"Hi @{JOINER}here and"
