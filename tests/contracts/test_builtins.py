"""Each built-in contract: pass, fix, violation, and auto_fix off turning its fix into a violation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.contracts import Verdict
from bot.contracts.builtins import trim_at_sentence, trim_at_word
from bot.tokens.counting import count_message, count_text, truncate_text
from bot.tokens.trimming_logic import PromptMessage, fit_to_budget, prompt_tokens
from tests.contracts.conftest import MODEL, candidate, message


def only(name: str, stage: str, **spec):
    """A contracts section with just one contract in one stage."""
    section = {"chat_input": [], "chat_output": [], "image_prompt": []}
    section[stage] = [{"name": name, **spec}]
    return section


# --- not_empty -------------------------------------------------------------------------------


def test_not_empty_passes_text(build) -> None:
    engine = build(**only("not_empty", "chat_output"))
    assert engine.check_reply("Hi 🐻").verdict is Verdict.PASS


@pytest.mark.parametrize(
    "reply", ["", "   \n\t", "\u200b\u200d \ufeff", None, [{"type": "image_url", "image_url": {}}]]
)
def test_not_empty_refuses_blank_replies_even_with_auto_fix(build, reply) -> None:
    engine = build(**only("not_empty", "chat_output", auto_fix=True))
    outcome = engine.check_reply(reply)
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.contract == "not_empty"
    assert outcome.reasons == ["not_empty: the reply is empty"]


def test_not_empty_on_chat_input(build) -> None:
    engine = build(**only("not_empty", "chat_input"))
    assert engine.check_chat_input(candidate("hello")).ok
    blank = candidate("   ")
    assert engine.check_chat_input(blank).reasons == ["not_empty: the message has no text"]
    none = replace(blank, messages=[*blank.messages[:-1], PromptMessage("user", None, 0)])  # type: ignore[arg-type]
    assert engine.check_chat_input(none).verdict is Verdict.VIOLATION
    nothing = replace(blank, messages=[])
    assert engine.check_chat_input(nothing).reasons == ["not_empty: there are no messages to answer"]


def test_not_empty_reads_text_parts(build) -> None:
    engine = build(**only("not_empty", "chat_input"))
    parts = [{"type": "image_url", "image_url": {"url": "https://x"}}, {"type": "text", "text": "look!"}]
    base = candidate("x")
    with_parts = replace(base, messages=[*base.messages[:-1], PromptMessage("user", parts, 5)])  # type: ignore[arg-type]
    assert engine.check_chat_input(with_parts).ok
    image_only = replace(base, messages=[*base.messages[:-1], PromptMessage("user", parts[:1], 5)])  # type: ignore[arg-type]
    assert engine.check_chat_input(image_only).verdict is Verdict.VIOLATION


# --- prompt_length ---------------------------------------------------------------------------


def test_prompt_length_passes_at_the_limit(build) -> None:
    engine = build(**only("prompt_length", "image_prompt", settings={"max_chars": 20}))
    assert engine.check_image_prompt("x" * 20).verdict is Verdict.PASS


def test_prompt_length_fix_cuts_at_a_word(build) -> None:
    engine = build(**only("prompt_length", "image_prompt", settings={"max_chars": 30}))
    prompt = "A friendly stuffed teddy bear mascot named Lukas"
    outcome = engine.check_image_prompt(prompt)
    assert outcome.verdict is Verdict.FIXED
    assert outcome.value == "A friendly stuffed teddy bear"
    assert outcome.reasons == ["prompt_length: shortened to 29 characters (48 characters, the limit is 30)"]


def test_prompt_length_without_auto_fix_is_a_violation(build) -> None:
    engine = build(**only("prompt_length", "image_prompt", auto_fix=False, settings={"max_chars": 4000}))
    prompt = "bear " * 801  # 4005 characters, seed 002's 4000 limit
    outcome = engine.check_image_prompt(prompt)
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.value == prompt
    assert outcome.reasons == ["prompt_length: too long: 4005 characters, the limit is 4000"]


def test_prompt_length_on_chat_input_recounts_tokens(build) -> None:
    engine = build(**only("prompt_length", "chat_input", settings={"max_chars": 12}))
    outcome = engine.check_chat_input(candidate("earlier", "please tell me a long story"))
    newest = outcome.value.messages[-1]
    assert outcome.verdict is Verdict.FIXED
    assert newest.content == "please tell"
    assert newest.tokens == count_message("please tell", model=MODEL)
    assert outcome.value.messages[1].content == "earlier"


# --- token_budget ----------------------------------------------------------------------------


def test_token_budget_passes_when_it_fits(build) -> None:
    engine = build(**only("token_budget", "chat_input"))
    prompt = candidate("hi", "hello!", "how are you?", budget=4000)
    outcome = engine.check_chat_input(prompt)
    assert outcome.verdict is Verdict.PASS
    assert outcome.value is prompt


def test_token_budget_fix_is_fit_to_budget(build) -> None:
    engine = build(**only("token_budget", "chat_input"))
    history = [f"message number {i} " + "word " * 40 for i in range(10)]
    prompt = candidate(*history, "newest question?", budget=300, reply=100)
    assert prompt_tokens(prompt.messages) + 100 > 300
    outcome = engine.check_chat_input(prompt)
    expected = fit_to_budget(
        messages=prompt.messages,
        budget_tokens=300,
        reply_tokens=100,
        shorten=lambda text, room: truncate_text(text, max_tokens=room, model=MODEL),
        count=lambda text: count_text(text, model=MODEL),
    )
    assert outcome.verdict is Verdict.FIXED
    assert outcome.value.messages == expected.messages
    assert prompt_tokens(outcome.value.messages) + 100 <= 300
    assert outcome.value.messages[0].role == "system"
    assert outcome.value.messages[-1].content == "newest question?"
    assert outcome.reasons[0].startswith(f"token_budget: dropped {expected.dropped} oldest message(s)")


def test_token_budget_shortens_an_enormous_newest_message(build) -> None:
    engine = build(**only("token_budget", "chat_input"))
    outcome = engine.check_chat_input(candidate("honey " * 5000, budget=400, reply=100))
    assert outcome.verdict is Verdict.FIXED
    assert "shortened the newest message" in outcome.reasons[0]
    assert prompt_tokens(outcome.value.messages) + 100 <= 400


def test_token_budget_violation_when_the_system_prompt_alone_is_too_big(build) -> None:
    engine = build(**only("token_budget", "chat_input"))
    outcome = engine.check_chat_input(candidate("hi", system="rules " * 600, budget=300, reply=100))
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.contract == "token_budget"
    assert outcome.reasons[0].endswith("even without history")


def test_token_budget_without_auto_fix_is_a_violation(build) -> None:
    engine = build(**only("token_budget", "chat_input", auto_fix=False))
    prompt = candidate(*["word " * 50] * 6, "newest", budget=300, reply=100)
    outcome = engine.check_chat_input(prompt)
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.value is prompt
    assert outcome.reasons[0].startswith("token_budget: prompt and reply need")


def test_token_budget_counts_messages_without_a_stored_count(build) -> None:
    engine = build(**only("token_budget", "chat_input", auto_fix=False))
    text = "word " * 400
    base = candidate("x", budget=300, reply=50)
    uncounted = replace(base, messages=[base.messages[0], PromptMessage("user", text, 0)])
    assert engine.check_chat_input(uncounted).verdict is Verdict.VIOLATION


# --- banned_terms ----------------------------------------------------------------------------


def test_banned_terms_passes_clean_text(build) -> None:
    engine = build(banned_terms=["badword"], **only("banned_terms", "image_prompt"))
    assert engine.check_image_prompt("a bear in a classy hat").verdict is Verdict.PASS


def test_banned_terms_violation_never_names_the_term(build) -> None:
    engine = build(banned_terms=["Grizzlyhate"], **only("banned_terms", "chat_input", auto_fix=False))
    outcome = engine.check_chat_input(candidate("hi", "hello", "I feel g r i z z l y h a t e today"))
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.contract == "banned_terms"
    assert outcome.reasons == ["banned_terms: banned term found"]
    assert "grizzly" not in repr(outcome.reasons).lower()


def test_banned_terms_fix_masks_and_recounts(build) -> None:
    engine = build(banned_terms=["badword"], **only("banned_terms", "chat_input", settings={"mask": "[...]"}))
    outcome = engine.check_chat_input(candidate("what does BADWORD mean?"))
    newest = outcome.value.messages[-1]
    assert outcome.verdict is Verdict.FIXED
    assert newest.content == "what does [...] mean?"
    assert newest.tokens == count_message("what does [...] mean?", model=MODEL)
    assert outcome.reasons == ["banned_terms: masked 1 banned term(s)"]


def test_banned_terms_fix_on_image_prompt(build) -> None:
    engine = build(banned_terms=["zombie"], **only("banned_terms", "image_prompt"))
    outcome = engine.check_image_prompt("a bear dressed as a Zömbie")
    assert (outcome.verdict, outcome.value) == (Verdict.FIXED, "a bear dressed as a ***")


def test_banned_terms_scope(build) -> None:
    prompt = candidate("tell me about badword", "I'd rather not.", "ok, something else then")
    newest_only = build(banned_terms=["badword"], **only("banned_terms", "chat_input", auto_fix=False))
    assert newest_only.check_chat_input(prompt).verdict is Verdict.PASS
    history = build(
        banned_terms=["badword"], **only("banned_terms", "chat_input", auto_fix=False, settings={"scope": "history"})
    )
    assert history.check_chat_input(prompt).verdict is Verdict.VIOLATION


def test_banned_terms_ignores_the_system_prompt_in_history_scope(build) -> None:
    engine = build(
        banned_terms=["honey"], **only("banned_terms", "chat_input", auto_fix=False, settings={"scope": "history"})
    )
    assert engine.check_chat_input(candidate("hi", system="You love honey.")).ok


def test_banned_terms_without_terms_passes(build) -> None:
    engine = build(**only("banned_terms", "chat_output"))
    assert engine.check_reply("anything").verdict is Verdict.PASS


# --- reply_length ----------------------------------------------------------------------------


def test_reply_length_passes(build) -> None:
    engine = build(**only("reply_length", "chat_output", settings={"min_chars": 2, "max_chars": 50}))
    assert engine.check_reply("Hello there!").verdict is Verdict.PASS


def test_reply_length_fix_trims_at_a_sentence(build) -> None:
    engine = build(**only("reply_length", "chat_output", settings={"max_chars": 40}))
    reply = "Honey is great. Bears love it! And then there is much more to say about it."
    outcome = engine.check_reply(reply)
    assert outcome.verdict is Verdict.FIXED
    assert outcome.value == "Honey is great. Bears love it!"
    assert outcome.reasons == ["reply_length: trimmed to 30 characters (75 characters, the limit is 40)"]


def test_reply_length_falls_back_to_a_word_and_ellipsis(build) -> None:
    engine = build(**only("reply_length", "chat_output", settings={"max_chars": 30}))
    outcome = engine.check_reply("one two three four five six seven eight nine ten")
    assert outcome.value == "one two three four five six…"
    assert len(outcome.value) <= 30


def test_reply_length_too_short_is_a_violation(build) -> None:
    engine = build(**only("reply_length", "chat_output", settings={"min_chars": 5, "max_chars": 100}))
    outcome = engine.check_reply("  ok  ")
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.reasons == ["reply_length: too short: 2 characters, the minimum is 5"]


def test_reply_length_without_auto_fix_is_a_violation(build) -> None:
    engine = build(**only("reply_length", "chat_output", auto_fix=False, settings={"max_chars": 10}))
    outcome = engine.check_reply("This reply is far too long.")
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.value == "This reply is far too long."


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Short.", 10, "Short."),
        ("First one. Second one is longer.", 20, "First one."),
        ('A sentence?! "Quoted." More text here', 25, 'A sentence?! "Quoted."'),
        ("Line one\nline two goes on and on", 15, "Line one"),
        ("x" * 50, 10, "x" * 9 + "…"),
    ],
)
def test_trim_at_sentence(text: str, limit: int, expected: str) -> None:
    assert trim_at_sentence(text, max_chars=limit) == expected
    assert len(trim_at_sentence(text, max_chars=limit)) <= limit


def test_trim_at_word_never_exceeds_the_limit() -> None:
    for limit in range(1, 40):
        assert len(trim_at_word("alpha beta gamma delta epsilon zeta eta theta", max_chars=limit, suffix="…")) <= limit


# --- reply_policy ----------------------------------------------------------------------------


def test_reply_policy_passes_a_normal_reply(build) -> None:
    engine = build(banned_terms=["badword"], **only("reply_policy", "chat_output"))
    assert engine.check_reply("Sure! Task sk-learn is a library; see AKIA docs.").verdict is Verdict.PASS


def test_reply_policy_redacts_secrets(build) -> None:
    engine = build(**only("reply_policy", "chat_output"))
    token = "xoxb-" + "1234567890-abcdefGHIJKL"
    outcome = engine.check_reply(f"Use {token} and you're set 🐻")
    assert outcome.verdict is Verdict.FIXED
    assert outcome.value == "Use [redacted] and you're set 🐻"
    assert token not in " ".join(outcome.reasons)
    assert outcome.reasons == ["reply_policy: redacted 1 secret-looking string(s) (slack_token)"]


def test_reply_policy_secret_without_auto_fix_is_a_violation(build) -> None:
    engine = build(**only("reply_policy", "chat_output", auto_fix=False))
    outcome = engine.check_reply("the key is sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2")
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.reasons == ["reply_policy: the reply contains something that looks like a secret (openai_key)"]


def test_reply_policy_banned_term_is_a_violation_even_with_auto_fix(build) -> None:
    engine = build(banned_terms=["badword"], **only("reply_policy", "chat_output", auto_fix=True))
    outcome = engine.check_reply("You are a b4dw0rd!")
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.reasons == ["reply_policy: the reply contains a banned term"]


def test_reply_policy_checks_can_be_switched_off(build) -> None:
    engine = build(
        banned_terms=["badword"],
        **only("reply_policy", "chat_output", settings={"banned_terms": False, "secrets": False}),
    )
    assert engine.check_reply("badword sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2").verdict is Verdict.PASS


def test_messages_helper_counts_like_the_pipeline() -> None:
    assert message("user", "hi").tokens == count_message("hi", model=MODEL)
