"""Pure decisions of the chat path: event classification, history window, trimming, fallbacks, splitting."""

from __future__ import annotations

import random

import pytest

from bot.chat.events_logic import Ignored, IncomingMessage, classify_event
from bot.chat.history_logic import StoredMessage, build_prompt, select_window
from bot.config.schema import ModelPrice, RetryPolicy
from bot.llm.cost_logic import chat_cost
from bot.llm.fallbacks import pick_line
from bot.llm.retry_logic import backoff_seconds
from bot.slack.format_logic import split_message
from bot.tokens import counting as tokens
from bot.tokens.trimming_logic import PromptMessage, fit_to_budget, prompt_tokens

BOT = {"bot_user_id": "UBOT", "bot_id": "BBOT", "event_id": "Ev1", "team_id": "T1"}


def classify(event: object, event_type: str = "message") -> IncomingMessage | Ignored:
    return classify_event(event=event, event_type=event_type, **BOT)


def test_dm_is_answered_in_the_main_timeline() -> None:
    result = classify({"channel": "D1", "channel_type": "im", "user": "U1", "text": "hi", "ts": "1700000000.000100"})
    assert isinstance(result, IncomingMessage)
    assert (result.kind, result.conversation_thread_ts, result.reply_thread_ts) == ("dm", "", None)


def test_mention_starts_a_thread_keyed_by_its_ts_and_strips_the_mention() -> None:
    event = {"channel": "C1", "user": "U1", "text": "<@UBOT>  how are   you?", "ts": "1700000000.000200"}
    result = classify(event, "app_mention")
    assert isinstance(result, IncomingMessage)
    assert result.text == "how are you?"
    assert result.conversation_thread_ts == result.reply_thread_ts == "1700000000.000200"
    assert not result.only_if_lukas_in_thread


def test_message_event_carrying_the_mention_is_keyed_like_the_app_mention() -> None:
    event = {"channel": "C1", "channel_type": "channel", "user": "U1", "text": "<@UBOT> hi", "ts": "1700000000.000300"}
    result = classify(event)
    assert isinstance(result, IncomingMessage) and result.conversation_thread_ts == "1700000000.000300"


def test_thread_reply_without_mention_only_where_lukas_talks() -> None:
    event = {
        "channel": "C1",
        "channel_type": "channel",
        "user": "U1",
        "text": "and then?",
        "ts": "1700000000.000400",
        "thread_ts": "1700000000.000300",
    }
    result = classify(event)
    assert isinstance(result, IncomingMessage)
    assert result.only_if_lukas_in_thread and result.conversation_thread_ts == "1700000000.000300"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            {"channel": "C1", "user": "U1", "text": "x", "ts": "1700000000.1", "subtype": "message_changed"},
            "message_changed without the message",
        ),
        (
            {"channel": "C1", "user": "U1", "text": "x", "ts": "1700000000.1", "subtype": "message_deleted"},
            "message_deleted without a valid deleted_ts",
        ),
        (
            {"channel": "C1", "user": "U1", "text": "x", "ts": "1700000000.1", "subtype": "channel_join"},
            "subtype channel_join",
        ),
        ({"channel": "D1", "user": "UBOT", "text": "x", "ts": "1700000000.1"}, "own message"),
        ({"channel": "D1", "user": "U2", "bot_id": "BOTHER", "text": "x", "ts": "1700000000.1"}, "message from a bot"),
        ({"channel": "D1", "text": "x", "ts": "1700000000.1"}, "missing fields: user"),
        ({"channel": "D1", "user": "U1", "text": "", "ts": "1700000000.1"}, "no text (empty or file-only message)"),
        (
            {"channel": "D1", "user": "U1", "ts": "1700000000.1", "files": [{"id": "F1"}], "subtype": "file_share"},
            "no text (empty or file-only message)",
        ),
        (
            {"channel": "C1", "channel_type": "channel", "user": "U1", "text": "chatter", "ts": "1700000000.1"},
            "channel message without a mention",
        ),
        ({"channel": "D1", "user": "U1", "text": "x", "ts": "not-a-ts"}, "malformed ts"),
        ({"channel": "D1", "user": "U1", "text": {"nested": 1}, "ts": "1700000000.1"}, "malformed text"),
        ("just a string", "malformed event (not an object)"),
    ],
)
def test_ignored_events_say_why(event: object, reason: str) -> None:
    result = classify(event)
    assert isinstance(result, Ignored)
    assert result.reason == reason


def stored(i: int, sender: str = "user", **kw: object) -> StoredMessage:
    return StoredMessage(
        id=i,
        sender=sender,
        content=f"m{i}",
        user_name=kw.get("name"),  # type: ignore[arg-type]
        token_count=kw.get("tokens"),
        flagged=bool(kw.get("flagged")),
    )  # type: ignore[arg-type]


def test_history_window_is_the_newest_n_oldest_first_without_fallbacks_or_flagged() -> None:
    messages = [stored(i, "bot" if i % 2 else "user") for i in range(1, 30)]
    messages[27] = stored(28, "fallback")
    messages[25] = stored(26, "user", flagged=True)
    window = select_window(messages=list(reversed(messages)), history_size=20)
    ids = [m.id for m in window]
    assert ids == sorted(ids) and len(ids) == 20
    assert ids[-1] == 29 and 28 not in ids and 26 not in ids


def test_prompt_starts_with_persona_and_names_people_and_reuses_counts() -> None:
    window = [stored(1, name="Anna", tokens=None), stored(2, "bot", tokens=7)]
    prompt, new_counts = build_prompt(
        system_prompt="You are Lukas.", window=window, count=len, count_name=lambda name: 100
    )
    assert prompt[0].role == "system" and prompt[0].content.startswith("You are Lukas.")
    assert prompt[1].content == "Anna: m1" and prompt[1].role == "user"
    assert prompt[1].tokens == len("m1") + 100  # stored count of the words + the name prefix
    assert prompt[2].role == "assistant" and prompt[2].tokens == 7
    assert new_counts == {1: len("m1")}


def pm(role: str, tokens_: int, content: str = "x") -> PromptMessage:
    return PromptMessage(role=role, content=content, tokens=tokens_)


def test_trimming_drops_oldest_and_keeps_system_and_newest() -> None:
    messages = [pm("system", 100), *[pm("user", 300, f"old{i}") for i in range(10)], pm("user", 50, "newest")]
    result = fit_to_budget(messages=messages, budget_tokens=1000, reply_tokens=150, shorten=lambda t, n: t, count=len)
    assert result.messages[0].role == "system" and result.messages[-1].content == "newest"
    assert result.fits(budget_tokens=1000, reply_tokens=150)
    assert result.messages[1].content == "old8" and result.dropped == 8  # the two newest history entries survive
    assert result.prompt_tokens == prompt_tokens(result.messages)


def test_one_enormous_message_is_shortened_not_refused() -> None:
    model = "gpt-4.1-mini"
    huge = "honey " * 20_000
    system = "You are Lukas."
    messages = [
        pm("system", tokens.count_message(system, model=model), system),
        PromptMessage(role="user", content=huge, tokens=tokens.count_message(huge, model=model)),
    ]
    result = fit_to_budget(
        messages=messages,
        budget_tokens=4000,
        reply_tokens=150,
        shorten=lambda text, n: tokens.truncate_text(text, max_tokens=n, model=model),
        count=lambda text: tokens.count_text(text, model=model),
    )
    assert result.shortened and result.messages[-1].content
    assert huge.startswith(result.messages[-1].content)
    assert result.fits(budget_tokens=4000, reply_tokens=150)


def test_fallback_never_repeats_back_to_back() -> None:
    lines = ["a", "b", "c"]
    rng = random.Random(7)
    last = None
    for _ in range(200):
        line = pick_line(lines=lines, last=last, rng=rng)
        assert line != last
        last = line
    assert pick_line(lines=["only"], last="only") == "only"


def test_split_message_respects_the_limit_and_keeps_all_text() -> None:
    text = ("Honey is great. " * 400).strip()
    parts = split_message(text, limit=1000)
    assert all(len(part) <= 1000 for part in parts) and len(parts) > 1
    assert " ".join(parts).split() == text.split()
    assert split_message("short", limit=1000) == ["short"]


def test_backoff_is_exponential_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(
        attempts=3, wait_min_seconds=1, wait_max_seconds=10, multiplier=1, jitter_seconds=1, max_retry_after_seconds=30
    )
    assert backoff_seconds(attempt=1, policy=policy, retry_after=None, jitter=0) == 1
    assert backoff_seconds(attempt=3, policy=policy, retry_after=None, jitter=0) == 4
    assert backoff_seconds(attempt=8, policy=policy, retry_after=None, jitter=0.5) == 10.5
    assert backoff_seconds(attempt=1, policy=policy, retry_after=7, jitter=0.9) == 7
    assert backoff_seconds(attempt=1, policy=policy, retry_after=31, jitter=0) is None


def test_cost_from_the_price_table() -> None:
    prices = {"gpt-4.1-mini": ModelPrice(input=0.40, output=1.60)}
    assert chat_cost(prices=prices, model="gpt-4.1-mini", prompt_tokens=1_000_000, completion_tokens=500_000) == 1.2
    assert chat_cost(prices=prices, model="openai:gpt-4.1-mini", prompt_tokens=1000, completion_tokens=0) == 0.0004
    assert chat_cost(prices=prices, model="unknown", prompt_tokens=1, completion_tokens=1) is None
