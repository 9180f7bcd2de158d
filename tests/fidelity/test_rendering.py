"""One rendering path: what Slack receives for each Markdown construct, on the plain and the streamed path, and
for the texts that cannot take markdown_text (captions, slash-command answers). Splitting keeps fences and links."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from bot.chat.reply_logic import has_words
from bot.config.loader import load_config
from bot.images.posting import post_image
from bot.slack.client import build_web_client
from bot.slack.format_logic import render, split_message, to_mrkdwn
from tests.harness import mention_event, message_event, new_ts, running_lukas
from tests.providers.standins import StreamingLLM, streamed_text
from tests.standins.openai_api import TINY_PNG, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config.yml")
FALLBACKS = set(CONFIG.fallbacks.lines)

# Markdown construct -> (what the model writes, what mrkdwn must show where markdown_text is not accepted)
# Links keep working but show their real target (the guards' sanitiser runs inside render): see LINK_SHOWN.
TABLE = {
    "bold": ("**Honey** is best", "*Honey* is best"),
    "italic": ("a *tiny* bear", "a _tiny_ bear"),
    "link": (
        "see [the hive](https://bees.example/hive?a=1&b=2)",
        "see the hive (https://bees.example/hive?a=1&amp;b=2)",
    ),
    "list": ("- clover\n- heather", "• clover\n• heather"),
    "ordered list": ("1. wake up\n2. eat honey", "1. wake up\n2. eat honey"),
    "heading": ("# Bear facts", "*Bear facts*"),
    "code span": ("run `make honey` now", "run `make honey` now"),
    "fence": ("```python\nprint('**not bold**')\n```", "```python\nprint('**not bold**')\n```"),
    "strike": ("~~vegetables~~", "~vegetables~"),
    "escaping": ("1 < 2 & 3 > 2", "1 &lt; 2 &amp; 3 &gt; 2"),
}
ESCAPING_SHOWN = "1 &lt; 2 & 3 > 2"  # markdown_text: a `<` opening no allowed token is escaped (Slack shows "<")
LINK_SHOWN = "see the hive (https://bees.example/hive?a=1&b=2)"  # markdown_text: Slack links the bare URL
REPLY = "\n\n".join(markdown for markdown, _ in TABLE.values())
SHOWN = REPLY.replace(TABLE["link"][0], LINK_SHOWN).replace(TABLE["escaping"][0], ESCAPING_SHOWN)  # markdown_text


@pytest.mark.parametrize("construct", list(TABLE))
def test_markdown_text_passes_through_and_mrkdwn_converts(construct: str) -> None:
    markdown, mrkdwn = TABLE[construct]
    shown = {"link": LINK_SHOWN, "escaping": ESCAPING_SHOWN}.get(construct, markdown)
    assert render(markdown, into="markdown_text") == {"markdown_text": shown}
    assert render(markdown, into="text") == {"text": mrkdwn}
    assert render(markdown, into="initial_comment") == {"initial_comment": mrkdwn}


def test_render_refuses_unknown_targets_and_keeps_quotes() -> None:
    with pytest.raises(ValueError, match="blocks"):
        render("x", into="blocks")
    assert to_mrkdwn("> a quote\nnot > this") == "> a quote\nnot &gt; this"


def test_punctuation_only_text_has_no_words() -> None:
    assert not has_words("** __ ``` --- ### > []()")
    assert has_words("🐻") and has_words(":)") and has_words("**hi**")


def _fences_balanced(part: str) -> bool:
    return len(re.findall(r"^ {0,3}```", part, flags=re.MULTILINE)) % 2 == 0


def test_splitting_never_breaks_a_fence_or_a_link() -> None:
    link = "[the long-named honey documentation page](https://bees.example/docs/honey/very/long/path?x=1)"
    code = "```python\n" + "\n".join(f"jar_{i} = fill(jar_{i}, honey={i})" for i in range(120)) + "\n```"
    text = "\n\n".join([("Bears like honey. " * 40 + link + " ") * 3, code, ("More words " * 30 + link) * 4])
    for limit in (300, 500, 1000):
        parts = split_message(text, limit=limit)
        assert len(parts) > 3 and all(len(part) <= limit for part in parts)
        assert all(_fences_balanced(part) for part in parts)
        joined = "\n".join(parts)
        assert joined.count(link) == text.count(link)  # every link whole, in one part
        code_parts = [p for p in parts if "jar_" in p]
        assert all(p.startswith("```python\n") and p.endswith("```") for p in code_parts[1:-1])
        lines = [line for p in code_parts for line in p.splitlines() if line.startswith("jar_")]
        assert lines == [line for line in code.splitlines() if line.startswith("jar_")]  # nothing lost or cut


def test_an_unterminated_fence_is_closed() -> None:
    assert split_message("Here:\n```\nhoney()", limit=100) == ["Here:\n```\nhoney()\n```"]
    parts = split_message("```\n" + "x = 1\n" * 100, limit=120)
    assert all(_fences_balanced(p) and len(p) <= 120 for p in parts)


async def test_the_plain_path_sends_markdown_text(tmp_path: Path, database_url: str) -> None:
    async with OpenAIStandIn(reply=REPLY) as llm, running_lukas(tmp_path, database_url, llm=llm) as h:
        await h.send(message_event(text="Teach me Markdown"))
        await h.settle()
        (post,) = h.slack.calls_to("chat.postMessage")
        assert post.ok and post.params["markdown_text"] == SHOWN and "text" not in post.params


async def test_the_streamed_path_sends_the_same_markdown(tmp_path: Path, database_url: str) -> None:
    llm = StreamingLLM(reply=REPLY)
    llm.stream_chunk_delay = 0.01
    overrides = {"streaming": {"enabled": True, "flush_interval_seconds": 0.05, "update_interval_seconds": 0.5}}
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=overrides) as h:
        root = new_ts()
        await h.send(mention_event(text="Teach me Markdown", ts=root))
        await h.wait_until(lambda: bool(h.slack.calls_to("chat.stopStream")))
        await h.send(message_event(text="And in my DMs?"))  # the DM timeline: post, then chat.update
        await h.settle()
        assert streamed_text(h.slack, "C0GENERAL") == SHOWN
        stream_calls = [c for c in h.slack.calls if c.method.startswith("chat.") and c.method.endswith("Stream")]
        assert stream_calls and not any("text" in c.params for c in stream_calls)
        dm_calls = [c for c in h.slack.calls if c.params.get("channel") == "D0DM" and c.method.startswith("chat.")]
        assert dm_calls[-1].params["markdown_text"] == SHOWN and all("text" not in c.params for c in dm_calls)


async def test_a_caption_and_a_slash_answer_are_mrkdwn(tmp_path: Path, database_url: str) -> None:
    async with SlackStandIn() as slack:
        client = build_web_client(token="xoxb-test", api_url=slack.api_url)
        caption = "**Happy** autumn from [the den](https://bears.example/den)!"
        result = await post_image(
            client, channel="C0BEARS", data=TINY_PNG, filename="b.png", title="t", alt_text="a", caption=caption
        )
        assert result.ok
        (complete,) = slack.calls_to("files.completeUploadExternal")
        # converted to mrkdwn, and the link shows its real target (the guards' sanitiser runs inside render)
        assert complete.params["initial_comment"] == "*Happy* autumn from the den (https://bears.example/den)!"
    async with running_lukas(tmp_path, database_url) as h:
        status, ack = await h.command("help")
        assert status == 200 and ack["text"].startswith("*Hi, I'm Lukas*") and "**" not in ack["text"]


async def test_bad_replies_are_handled_quietly(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    long_reply = ("Bears sleep all winter long. " * 30 + "\n\n```\n" + "snore()\n" * 40 + "```\n\n") * 34
    assert len(long_reply) > 40_000
    replies = iter(["** __ ```", "Look:\n```python\nprint('honey')", long_reply])

    # an admin who lifted the reply_length check (the shipped 3,000 would trim the long reply before Slack)
    long_allowed = {
        "contracts": {
            "chat_output": [
                {"name": "not_empty"},
                {"name": "reply_length", "settings": {"min_chars": 1, "max_chars": 100_000}},
                {"name": "reply_policy", "settings": {"banned_terms": True, "secrets": True}},
            ]
        }
    }
    async with OpenAIStandIn() as llm, running_lukas(tmp_path, database_url, llm=llm, overrides=long_allowed) as h:
        llm.reply = lambda _body: next(replies)
        caplog.set_level(logging.INFO, logger="bot")
        for channel in ("D0ONE", "D0TWO", "D0THREE"):
            await h.send(message_event(text="say something", channel=channel))
            await h.settle(timeout=30)
        (punctuation,) = h.slack.posted_texts("D0ONE")
        assert punctuation in FALLBACKS
        assert h.slack.posted_texts("D0TWO") == ["Look:\n```python\nprint('honey')\n```"]
        parts = [c for c in h.slack.calls_to("chat.postMessage") if c.params["channel"] == "D0THREE"]
        limit = CONFIG.slack.max_message_chars
        assert len(parts) >= 10 and all(c.ok and len(c.text) <= limit for c in parts)
        assert all(_fences_balanced(c.text) for c in parts)
        assert sum(c.text.count("snore()") for c in parts) == long_reply.count("snore()")
        only_punctuation = [r for r in caplog.records if "only Markdown punctuation" in r.getMessage()]
        assert len(only_punctuation) == 1 and only_punctuation[0].levelno == logging.WARNING
        long_logs = [r for r in caplog.records if "posting it in" in r.getMessage()]
        assert len(long_logs) == 1 and long_logs[0].levelno == logging.INFO
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
