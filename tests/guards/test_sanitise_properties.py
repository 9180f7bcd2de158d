"""The output sanitiser's promises as invariants: for any model output, what reaches Slack (posted, split into
parts, streamed in any chunks, converted to mrkdwn) notifies no crowd, pings nobody outside the conversation and
hides no link's target (judged by tests/guards/slack_view.py), sanitising is idempotent, and what is stored is what
Slack received."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.chat.ports import ReplyTarget
from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.config.providers_schema import StreamingConfig
from bot.slack.format_logic import render, split_message
from bot.slack.platform import SlackPlatform
from bot.slack.replies import UserNames
from bot.slack.sanitise_logic import sanitise_outgoing
from bot.slack.streaming import SlackReplyStream
from tests.guards.slack_view import problems

try:
    from markdown_it import MarkdownIt
except ImportError:  # a dependency of a dependency (rich): the test below is skipped without it
    MarkdownIt = None

PEOPLE = frozenset({"U0ANNA", "U0BEN"})
CONFIG_PATH = Path(__file__).resolve().parents[2] / "config.yml"

# The dangerous alphabet: Slack's token syntax, Markdown's link syntax, escapes, emphasis and the words that notify.
FRAGMENTS = [
    *"<>!@#|^[]()&;_*~`\\:/ \n.",
    "```",
    "channel",
    "!channel",
    "here",
    "everyone",
    "group",
    "subteam",
    "date",
    "U0EVE",
    "U0ANNA",
    "C0GEN",
    "S01",
    "123",
    "https://evil",
    "https://good",
    "mailto:",
    "lt;",
    "amp;",
    "#64;",
    "commat;",
    "\u2060",
    "Hi team ",
]
# Openers and closers nest into the shapes that peel: `<<!a>!channel>`, `[x [y]](<url>)`, `<[](@U…<!a>)>`.
OPENERS = ["<", "<!", "<@", "<#", "<!subteam^", "<!date^1^{date}", "<https://evil|", "[", "![", "](", "](<", "_", "`"]
CLOSERS = [">", "|", "^", "]", "](https://evil)", ")", ">)", "_", "`", "^https://evil|x>", " 'title')"]
flat = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)
model_output = st.recursive(
    flat,
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(OPENERS), inner, st.sampled_from(CLOSERS)).map("".join),
        st.lists(inner, min_size=2, max_size=4).map("".join),
    ),
    max_leaves=12,
)
piece = st.lists(st.sampled_from(FRAGMENTS), max_size=8).map("".join)  # a streamed delta


def clean(text: str) -> str:
    return sanitise_outgoing(text, allowed_user_ids=PEOPLE)


@given(model_output)
def test_nothing_sanitised_notifies_pings_a_stranger_or_hides_a_link(text: str) -> None:
    assert problems(clean(text), participants=PEOPLE) == []


@given(model_output)
def test_sanitising_is_idempotent(text: str) -> None:
    once = clean(text)
    assert clean(once) == once


@given(model_output, st.sampled_from(["markdown_text", "text", "initial_comment"]))
def test_every_rendering_is_safe_even_of_text_sanitised_before(text: str, into: str) -> None:
    """Whatever the caller already did (the chat core sanitises, then post_reply, then render), the bytes are safe:
    in Markdown for markdown_text, and in mrkdwn after the Markdown->mrkdwn conversion."""
    for source in (text, clean(text), clean(clean(text))):
        (sent,) = render(source, into=into, allowed_user_ids=PEOPLE).values()
        assert problems(sent, participants=PEOPLE, markdown=into == "markdown_text") == []


def _commonmark_links(markdown: str) -> list[tuple[str, str]]:
    """(shown text, target) of every link and image a CommonMark parser (markdown-it-py) finds."""
    found = []
    for block in MarkdownIt("commonmark").parse(markdown):
        children = block.children or []
        for index, token in enumerate(children):
            if token.type == "image":
                found.append((token.content, str(token.attrGet("src"))))
            elif token.type == "link_open":
                end = next(i for i in range(index, len(children)) if children[i].type == "link_close")
                found.append(("".join(c.content for c in children[index:end]), str(token.attrGet("href"))))
    return found


@pytest.mark.skipif(MarkdownIt is None, reason="markdown-it-py is not installed")
@given(model_output)
def test_a_commonmark_parser_finds_no_link_hiding_its_target(text: str) -> None:
    """A second, independent judge of Markdown links: a real CommonMark parser, not the `](` rule of slack_view."""
    assert [(shown, target) for shown, target in _commonmark_links(clean(text)) if shown != target] == []


class FakeSlack:
    """The few Web API methods replies and streams call, recording what Slack would receive."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._ts = itertools.count(1)

    def _record(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((method, params))
        return {"ok": True, "ts": f"1.{next(self._ts)}"}

    async def chat_postMessage(self, **params: Any) -> dict[str, Any]:
        return self._record("chat.postMessage", params)

    async def chat_update(self, **params: Any) -> dict[str, Any]:
        return self._record("chat.update", params)

    async def chat_delete(self, **params: Any) -> dict[str, Any]:
        return self._record("chat.delete", params)

    async def chat_stream(self, **params: Any) -> FakeStream:
        return FakeStream(self)


class FakeStream:
    def __init__(self, slack: FakeSlack) -> None:
        self._slack = slack
        self.ts = "1.0"

    async def append(self, **params: Any) -> None:
        self._slack.calls.append(("chat.appendStream", params))

    async def stop(self, **params: Any) -> None:
        self._slack.calls.append(("chat.stopStream", params))


def _platform(slack: FakeSlack) -> SlackPlatform:
    shipped = load_config(CONFIG_PATH, env={})
    small = shipped.model_copy(update={"slack": shipped.slack.model_copy(update={"max_message_chars": MAX_CHARS})})
    config = LiveConfig(small, path=CONFIG_PATH)
    return SlackPlatform(slack, config=config, names=UserNames(slack, ttl_seconds=lambda: 60))  # type: ignore[arg-type]


MAX_CHARS = 300  # small, so that generated replies are split into several messages
PLATFORM_SLACK = FakeSlack()
PLATFORM = _platform(PLATFORM_SLACK)
TARGET = ReplyTarget(channel="C0GEN", thread_ts=None, participants=PEOPLE, question_id=7)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every example: a new one each time would cost more than the example."""
    running = asyncio.new_event_loop()
    yield running
    running.close()


@given(text=st.lists(model_output, min_size=1, max_size=16).map(" ".join))
# Found by CI: a date token kept whole held a code fence, split_message closed the fence inside it, and the posted
# part (re-checked) escaped what the stored text kept.
@example(text="<><><!date^1^{date}```https://evilhttps://evil>" + "<" * 300 + "channel>")
# ... and a code span swallowed a date token, so a hard cut split the token (the re-checked part escaped it).
@example(text="<```" + "<" * 60 + "https://evil" + "<" * 60 + "channelcommat;> <!date^1^{date}channelmailto:> ```")
def test_what_is_stored_is_what_slack_received(loop: asyncio.AbstractEventLoop, text: str) -> None:
    """The chat core stores platform.make_safe(reply) and posts it with platform.post_reply: every part Slack gets
    is safe, and the parts are exactly the stored text split for Slack (format_logic.split_message: cut at
    whitespace, a code fence cut in two closed and reopened, an unterminated one closed)."""
    PLATFORM_SLACK.calls.clear()
    stored = PLATFORM.make_safe(text, participants=PEOPLE)
    loop.run_until_complete(PLATFORM.post_reply(TARGET, stored))
    parts = [params["markdown_text"] for method, params in PLATFORM_SLACK.calls if method == "chat.postMessage"]
    assert all(problems(part, participants=PEOPLE) == [] for part in parts)
    assert parts == split_message(stored, limit=MAX_CHARS)


def _shown_over_time(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """What the streamed message showed after each call: the stream's text so far, or the last post or update."""
    shown, states = "", []
    for method, params in calls:
        text = params.get("markdown_text", "")
        if method in ("chat.appendStream", "chat.stopStream"):
            shown += text
        elif method in ("chat.postMessage", "chat.update"):
            shown = text
        states.append(shown)
    return states


async def _nothing() -> None:
    return None  # no database here to mark the question as posting


async def _stream(pieces: list[str], *, thread_ts: str | None) -> tuple[FakeSlack, str]:
    slack = FakeSlack()
    ticks = itertools.count(0, 100)  # every flush is due at once
    stream = SlackReplyStream(
        slack,  # type: ignore[arg-type]
        channel="C0GEN",
        thread_ts=thread_ts,
        recipient_team_id="T0",
        recipient_user_id="U0ANNA",
        settings=StreamingConfig(enabled=True),
        max_chars=MAX_CHARS,
        before_first_post=_nothing,
        clock=lambda: float(next(ticks)),
        allowed_user_ids=PEOPLE,
    )
    for piece in pieces:
        stream.feed(piece)
        for _ in range(4):
            await asyncio.sleep(0)  # let the flusher show this prefix
    final = "".join(pieces)
    await stream.deliver(final)
    return slack, final


@given(pieces=st.lists(piece, min_size=1, max_size=16), thread_ts=st.sampled_from(["1.5", None]))
def test_any_streamed_split_shows_only_safe_text_and_ends_as_stored(
    loop: asyncio.AbstractEventLoop, pieces: list[str], thread_ts: str | None
) -> None:
    """Streamed in a thread (appendStream) or edited in a DM (chat.update), in any chunks: every state of the message
    is safe, and the last one is the stored text."""
    slack, final = loop.run_until_complete(_stream(pieces, thread_ts=thread_ts))
    states = _shown_over_time(slack.calls)
    assert all(problems(state, participants=PEOPLE) == [] for state in states)
    stored = clean(final)
    parts = split_message(stored, limit=MAX_CHARS)
    if len(parts) == 1:  # the stream got the rest of the stored text, or the message was set to its one part
        assert states[-1].strip() in (stored.strip(), parts[0])
