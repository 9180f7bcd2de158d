"""Memory decisions without servers: window, budget with a summary, refresh plans, thread context choice."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.chat import memory_logic as ml
from bot.chat.history_logic import StoredMessage
from bot.chat.thread_logic import LUKAS, OTHER_BOT, PERSON, ThreadMessage, keep_for_budget
from bot.slack.threads import describe, message_text
from bot.tokens.trimming_logic import PromptMessage


def words(text: str) -> int:
    return len(text.split())


def count(text: str) -> int:  # a stand-in tokenizer: one token per word, plus the per-message overhead
    return words(text) + 3


def shorten(text: str, max_tokens: int) -> str:
    return " ".join(text.split()[:max_tokens])


def msg(i: int, *, sender: str = "user", tokens: int = 10, context: bool = False, name: str = "Anna") -> StoredMessage:
    return StoredMessage(id=i, sender=sender, content=f"m{i}", user_name=name, token_count=tokens, context=context)


# ----- coverage and the answer's window
def test_context_messages_come_first_and_a_boundary_covers_a_prefix() -> None:
    context = [msg(50, context=True), msg(51, context=True)]
    own = [msg(10), msg(52), msg(53)]
    inside_context = ml.Boundary(through_message_id=50, through_context=True)
    assert [ml.is_covered(message=m, boundary=inside_context) for m in context + own] == [
        True,
        False,
        False,
        False,
        False,
    ]
    past_context = ml.Boundary(through_message_id=52, through_context=False)
    assert [ml.is_covered(message=m, boundary=past_context) for m in context + own] == [True, True, True, True, False]
    assert not ml.is_covered(message=own[0], boundary=None)


def test_answer_window_keeps_uncovered_messages_up_to_history_plus_the_refresh_gap() -> None:
    messages = [msg(i, sender="user" if i % 2 else "bot") for i in range(1, 41)]
    boundary = ml.Boundary(through_message_id=10, through_context=False)
    window = ml.answer_window(messages=messages, boundary=boundary, history_size=20, refresh_after=6)
    assert [m.id for m in window] == list(range(16, 41))  # 25 = 20 + 5 not yet summarised
    few = ml.answer_window(messages=messages, boundary=ml.Boundary(35, False), history_size=20, refresh_after=6)
    assert [m.id for m in few] == [36, 37, 38, 39, 40]
    flagged = [*messages[:5], StoredMessage(99, "fallback", "oops", None, 3)]
    assert 99 not in [m.id for m in ml.answer_window(messages=flagged, boundary=None, history_size=20, refresh_after=1)]


# ----- persona + summary + window within the budget
def _prompt(n: int, tokens: int) -> list[PromptMessage]:
    return [PromptMessage("user" if i % 2 == 0 else "assistant", f"w{i} " * (tokens - 3), tokens) for i in range(n)]


def test_summary_is_kept_whole_when_everything_fits() -> None:
    system = PromptMessage("system", "persona", 50)
    summary = ml.summary_message(text="Anna's plant is Fernando.", tokens=20)
    fitted = ml.fit_with_summary(
        system=system,
        summary=summary,
        window=_prompt(5, 20),
        budget_tokens=1000,
        reply_tokens=100,
        shorten=shorten,
        count=count,
    )
    assert fitted.summary == "kept" and fitted.dropped == 0
    assert [m.role for m in fitted.messages][:2] == ["system", "system"]
    assert fitted.messages[1].content == "Earlier in this conversation: Anna's plant is Fernando."
    assert fitted.prompt_tokens == 50 + 20 + 100 + 3


def test_summary_is_shortened_before_any_window_message_is_dropped() -> None:
    system = PromptMessage("system", "persona", 50)
    summary = PromptMessage("system", "Earlier in this conversation: " + "fact " * 200, 210)
    window = _prompt(5, 20)
    fitted = ml.fit_with_summary(
        system=system,
        summary=summary,
        window=window,
        budget_tokens=400,
        reply_tokens=100,
        shorten=shorten,
        count=count,
    )
    assert fitted.summary == "shortened" and fitted.dropped == 0
    assert fitted.prompt_tokens + 100 <= 400
    assert fitted.messages[1].content.startswith("Earlier in this conversation: fact")
    assert fitted.messages[2:] == window


def test_summary_is_dropped_when_the_window_alone_fills_the_budget_then_old_messages_go() -> None:
    system = PromptMessage("system", "persona", 50)
    summary = PromptMessage("system", "Earlier in this conversation: x", 10)
    fitted = ml.fit_with_summary(
        system=system,
        summary=summary,
        window=_prompt(10, 40),
        budget_tokens=400,
        reply_tokens=100,
        shorten=shorten,
        count=count,
    )
    assert fitted.summary == "dropped" and fitted.dropped > 0
    assert all(not m.content.startswith("Earlier") for m in fitted.messages)
    assert fitted.prompt_tokens + 100 <= 400


# ----- the summariser's plan
def test_split_window_by_count_and_by_tokens() -> None:
    messages = [msg(i, tokens=10) for i in range(1, 31)]
    fallen, window = ml.split_window(uncovered=messages, history_size=20, window_tokens=10_000)
    assert [m.id for m in fallen] == list(range(1, 11)) and len(window) == 20
    fallen, window = ml.split_window(uncovered=messages, history_size=20, window_tokens=55)
    assert [m.id for m in window] == [26, 27, 28, 29, 30] and len(fallen) == 25


def test_plan_waits_for_enough_fallen_messages_then_extends_oldest_first() -> None:
    base = dict(
        previous=None,
        boundary=None,
        first_message_id=None,
        erased_since_built=False,
        covered=[],
        history_size=20,
        window_tokens=10_000,
        refresh_after=6,
        max_input_tokens=1000,
    )
    assert ml.plan_refresh(uncovered=[msg(i) for i in range(1, 26)], **base).action == ml.NONE  # 5 fell out
    plan = ml.plan_refresh(uncovered=[msg(i) for i in range(1, 27)], **base)
    assert plan.action == ml.EXTEND and [m.id for m in plan.messages] == [1, 2, 3, 4, 5, 6]
    assert plan.boundary == ml.Boundary(6, False) and plan.first_message_id == 1
    small = ml.plan_refresh(uncovered=[msg(i) for i in range(1, 27)], **{**base, "max_input_tokens": 25})
    assert [m.id for m in small.messages] == [1, 2]  # what fits the summary call's input; the rest next time


def test_plan_rebuilds_without_erased_messages_and_drops_when_nothing_is_left() -> None:
    base = dict(
        previous="old notes",
        boundary=ml.Boundary(10, False),
        first_message_id=1,
        history_size=20,
        window_tokens=10_000,
        refresh_after=6,
        max_input_tokens=1000,
    )
    covered = [msg(i) for i in (2, 3, 5)]  # 1, 4 and the rest were erased (not loaded)
    plan = ml.plan_refresh(erased_since_built=True, covered=covered, uncovered=[msg(i) for i in range(11, 20)], **base)
    assert plan.action == ml.REBUILD and plan.previous is None
    assert [m.id for m in plan.messages] == [2, 3, 5] and plan.boundary == ml.Boundary(5, False)
    gone = ml.plan_refresh(erased_since_built=True, covered=[], uncovered=[msg(i) for i in range(11, 20)], **base)
    assert gone.action == ml.DROP


def test_summary_request_names_speakers_and_carries_the_old_notes() -> None:
    request = ml.summary_request(
        persona_name="Lukas",
        previous="Anna has a plant.",
        messages=[msg(1), StoredMessage(2, "bot", "Lovely!", None, 3), msg(3, name="Deploy Bot (bot)")],
        max_words=100,
    )
    assert request[0]["role"] == "system" and "at most 100 words" in request[0]["content"]
    assert request[1]["content"] == (
        "Notes so far:\nAnna has a plant.\n\nNew messages, oldest first:\n"
        "Anna: m1\nLukas: Lovely!\nDeploy Bot (bot): m3"
    )


def test_cap_summary_trims_to_whole_sentences_within_the_cap() -> None:
    text = "One fact here. " * 40
    capped = ml.cap_summary(text, max_tokens=20, count=words, shorten=shorten)
    assert words(capped) <= 20 and capped.endswith(".")
    assert ml.cap_summary("Short and sweet.", max_tokens=20, count=words, shorten=shorten) == "Short and sweet."


# ----- thread context
def _thread(n: int) -> list[ThreadMessage]:
    return [
        ThreadMessage(ts=f"{1000 + i}.000100", author=PERSON, text=f"t{i} " * 5, user_id="U1", name="Anna")
        for i in range(n)
    ]


def test_thread_context_keeps_the_root_and_the_newest_within_count_and_tokens() -> None:
    kept = keep_for_budget(messages=_thread(1000), history_size=20, max_tokens=10_000, count=count)
    assert len(kept) == 19 and kept[0][0].text.startswith("t0 ") and kept[-1][0].text.startswith("t999 ")
    assert [m.text.split()[0] for m, _ in kept[1:3]] == ["t982", "t983"]
    tight = keep_for_budget(messages=_thread(1000), history_size=20, max_tokens=40, count=count)
    assert sum(tokens for _, tokens in tight) <= 40 and tight[-1][0].text.startswith("t999 ")
    assert keep_for_budget(messages=[], history_size=20, max_tokens=100, count=count) == []


def test_thread_messages_are_stored_as_named_turns() -> None:
    bot = ThreadMessage(ts="1.1", author=OTHER_BOT, text="deployed", name="Deploy Bot")
    lukas = ThreadMessage(ts="1.2", author=LUKAS, text="Hi!")
    person = ThreadMessage(ts="1.3", author=PERSON, text="hey", user_id="U1", name="Anna")
    assert (bot.sender, bot.display_name) == ("user", "Deploy Bot (bot)")
    assert (lukas.sender, lukas.display_name) == ("bot", None)
    assert (person.sender, person.display_name) == ("user", "Anna")


def test_slack_thread_messages_are_described_for_context() -> None:
    ids = {"own_user_id": "UBOT", "own_bot_id": "BBOT"}
    assert describe({"ts": "1.1", "user": "U1", "text": "<@UBOT> hi"}, **ids) == ("1.1", PERSON, "U1", None, "hi")
    assert describe({"ts": "1.2", "user": "UBOT", "bot_id": "BBOT", "text": "I'm Lukas"}, **ids)[1] == LUKAS
    other = describe({"ts": "1.3", "bot_id": "B2", "bot_profile": {"name": "CI"}, "text": "green"}, **ids)
    assert other == ("1.3", OTHER_BOT, None, "CI", "green")
    assert describe({"ts": "1.4", "user": "U1", "subtype": "channel_join", "text": "joined"}, **ids) is None
    assert describe({"ts": "1.5", "user": "U1", "text": ""}, **ids) is None  # nothing to read
    assert describe("not a message", **ids) is None
    files = {"ts": "1.6", "user": "U1", "text": "", "files": [{"name": "plan.pdf", "title": "Plan"}]}
    assert message_text(files) == "[file: Plan]"
    assert message_text({"attachments": [{"fallback": "Build #12 passed"}]}) == "Build #12 passed"


# ----- is a refresh due? judged from what the answer loaded, never missing one the refresh would make
@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    context = [
        msg(1000 + i, sender=draw(st.sampled_from(["user", "bot"])), tokens=draw(st.integers(1, 400)), context=True)
        for i in range(draw(st.integers(0, 30)))
    ]
    own = [
        msg(i, sender=draw(st.sampled_from(["user", "bot"])), tokens=draw(st.integers(1, 400)))
        for i in range(1, draw(st.integers(1, 60)) + 1)
    ]
    ordered = sorted(context + own, key=ml.order_key)
    cut = draw(st.none() | st.integers(0, len(ordered) - 1))
    boundary = ml.Boundary.of(ordered[cut]) if cut is not None else None
    return {
        "context": context,
        "own": own,
        "boundary": boundary,
        "history_size": draw(st.integers(1, 25)),
        "refresh_after": draw(st.integers(1, 10)),
        "window_tokens": draw(st.integers(50, 4000)),
        "reply_tokens": draw(st.none() | st.integers(1, 400)),
    }


@given(conversations())
def test_refresh_due_never_misses_a_refresh_and_is_exact_when_everything_was_loaded(case: dict[str, Any]) -> None:
    limit = case["history_size"] + case["refresh_after"] - 1  # the answer's load (bot.chat.service._history_rows)
    loaded = case["own"][-limit:] + case["context"][-limit:]
    reply_id = len(case["own"]) + 1
    reply = None if case["reply_tokens"] is None else msg(reply_id, sender="bot", tokens=case["reply_tokens"])
    boundary = case["boundary"]
    due = ml.refresh_due(
        history=loaded,
        boundary=boundary,
        summary_stale=False,
        reply=reply,
        loaded_limit=limit,
        history_size=case["history_size"],
        window_tokens=case["window_tokens"],
        refresh_after=case["refresh_after"],
    )
    everything = case["own"] + case["context"] + ([reply] if reply else [])  # what the refresh itself reads
    plan = ml.plan_refresh(
        previous="notes" if boundary else None,
        boundary=boundary,
        first_message_id=1 if boundary else None,
        erased_since_built=False,
        covered=[],
        uncovered=[m for m in everything if not ml.is_covered(message=m, boundary=boundary)],
        history_size=case["history_size"],
        window_tokens=case["window_tokens"],
        refresh_after=case["refresh_after"],
        max_input_tokens=6000,
    )
    if plan.action != ml.NONE:
        assert due, plan.reason
    if len(case["own"]) < limit and len(case["context"]) < limit:  # the load did not stop at its limit
        assert due == (plan.action != ml.NONE)


def test_a_stale_summary_is_always_due_and_a_short_conversation_never() -> None:
    short = [msg(i) for i in range(1, 5)]
    args = {"boundary": None, "loaded_limit": 25, "history_size": 20, "window_tokens": 4000, "refresh_after": 6}
    assert not ml.refresh_due(history=short, summary_stale=False, reply=msg(5, sender="bot"), **args)
    assert ml.refresh_due(history=short, summary_stale=True, reply=None, **args)
