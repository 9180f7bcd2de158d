"""The output sanitiser: nothing Lukas posts can notify a crowd, ping a stranger or hide a link's target."""

from __future__ import annotations

import pytest

from bot.slack.format_logic import render
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
    text = "5 > 2; email anna@here.example; see <#C0GENERAL> on <!date^1392734382^{date}|Feb 18> & more"
    assert clean(text) == text


def test_a_less_than_sign_that_opens_no_allowed_token_is_escaped() -> None:
    """Slack reads `< 4 and 5 >` as a token; escaped, the `<` shows the same and can never pair with a `>`."""
    assert clean("3 < 4 and 5 > 2, <div>, <b|c") == "3 &lt; 4 and 5 > 2, &lt;div>, &lt;b|c"
    assert clean("3 &lt; 4 &amp; &gt;") == "3 &lt; 4 &amp; &gt;"  # escapes stay escapes
    assert clean("&#64;channel &commat;here &#x40;everyone") == "&amp;#64;channel &amp;commat;here &amp;#x40;everyone"


@pytest.mark.parametrize(
    "peel",
    [
        "Hi team <<<<!a>!b>!c>!channel>",  # each deleting pass used to assemble the token the next one let through
        "Hi team <<<!a>!b>!channel>",
        "<[](@U0EVE<<<!a>!b>!c>)>",  # ... or a mention of someone outside the conversation
        "<!<!>>",
        "<<!here>!channel>",
        "<!date^1^{date}" + "](" * 39 + ">",  # a date the last pass would lengthen past what the first accepts
    ],
)
def test_the_sanitiser_cannot_be_peeled(peel: str) -> None:
    """Sanitising as often as the text is on its way out (the core, post_reply, render) gives the same safe text."""
    once = clean(peel)
    assert clean(clean(once)) == once
    assert "<!" not in once and "<@" not in once
    assert render(once, into="markdown_text", allowed_user_ids=PEOPLE) == {"markdown_text": once}


def test_a_date_that_carries_a_link_is_refused() -> None:
    assert clean("<!date^1392734382^{date}^https://evil|Nov 14>") == "&lt;!date^1392734382^{date}^https://evil|Nov 14>"


@pytest.mark.parametrize("word", ["_@channel_", "*@here*", "~@everyone~", "(@here)", "@here_now"])
def test_the_words_are_inert_inside_emphasis(word: str) -> None:
    assert clean(word) == word.replace("@", f"@{JOINER}")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("[the docs [v2]](<https://evil.example/login>)", "the docs [v2] (https://evil.example/login)"),
        ("[good](https://evil.com/a_(b))", "good (https://evil.com/a_(b))"),
        ("[docs](https://evil.example 'Docs')", "docs (https://evil.example)"),
        ('[docs](https://evil.example "Docs")', "docs (https://evil.example)"),
        ("![a bear](https://evil.example/bear.png)", "a bear (https://evil.example/bear.png)"),
        ("[a [b](https://x.example)](https://y.example)", "a b (https://x.example) (https://y.example)"),
    ],
)
def test_markdown_links_are_found_by_balancing_brackets(raw: str, shown: str) -> None:
    assert clean(f"See {raw} now") == f"See {shown} now"


@pytest.mark.parametrize(
    "raw", ["[docs][1]\n\n[1]: https://evil.example", "[docs]\n(https://evil.example)", "`[code](x)` [a](b c)"]
)
def test_no_markdown_link_can_form_from_what_is_left(raw: str) -> None:
    """A `](` or `]:` the scanner did not turn into "label (url)" gets an invisible joiner: no link, no definition."""
    out = clean(raw)
    assert "](" not in out and "]:" not in out
    assert out.replace(JOINER, "") == raw


def test_a_caption_cannot_carry_a_disguised_link() -> None:
    """The mrkdwn converter turns `[label](url)` into `<url|label>`: nothing it is given can become one."""
    caption = "draw yourself reading [the docs [v2]](<https://evil.example/login>)"
    assert render(caption, into="initial_comment") == {
        "initial_comment": "draw yourself reading the docs [v2] (https://evil.example/login)"
    }
    for sneaky in ("[a]" + JOINER + "(https://evil)", "[x](y) ![a](!channel)", "<[](@U0EVE)>"):
        (sent,) = render(sneaky, into="initial_comment").values()
        assert "<" not in sent.replace("&lt;", "")


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
