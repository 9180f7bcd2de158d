"""The engine: order, outcomes, bad input, streaming prefixes, the contract breaker and metrics."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from bot.config.contracts_schema import ContractBreakerConfig
from bot.contracts import (
    ChatCandidate,
    Contract,
    ContractEngine,
    ContractMetrics,
    ContractSlot,
    Finding,
    Verdict,
    render_metrics,
)
from bot.tokens.trimming_logic import PromptMessage
from tests.contracts.conftest import MODEL, FakeClock, candidate


class Exploding(Contract):
    """Raises while `broken` is set; passes otherwise."""

    name = "exploding"

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    def check(self, value: Any, *, auto_fix: bool) -> Finding:
        self.calls += 1
        if self.broken:
            raise RuntimeError("bug in a contract")
        return Finding.passed()


class Refuses(Contract):
    name = "refuses"

    def check(self, value: Any, *, auto_fix: bool) -> Finding:
        return Finding.violation("always no")


class Appends(Contract):
    """A fixer: appends its tag to a string."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.name = f"append_{tag}"  # type: ignore[misc]

    def check(self, value: Any, *, auto_fix: bool) -> Finding:
        if not auto_fix:
            return Finding.violation("would append")
        return Finding.fixed(value + self.tag, f"appended {self.tag}")


def engine_with(*slots: Any, metrics: ContractMetrics, clock: FakeClock, threshold: int = 3, cooldown: float = 60):
    return ContractEngine(
        chat_output=slots,
        breaker=ContractBreakerConfig(error_threshold=threshold, cooldown_seconds=cooldown),
        metrics=metrics,
        clock=clock,
    )


# --- order and outcomes ----------------------------------------------------------------------


def test_fixes_chain_in_configured_order(metrics, clock) -> None:
    engine = engine_with(Appends("a"), Appends("b"), metrics=metrics, clock=clock)
    outcome = engine.check_reply("x")
    assert outcome.verdict is Verdict.FIXED
    assert outcome.value == "xab"
    assert outcome.reasons == ["append_a: appended a", "append_b: appended b"]
    assert outcome.contract is None
    assert outcome.ok


def test_first_violation_stops_the_run_and_keeps_earlier_fixes(metrics, clock) -> None:
    later = Appends("z")
    engine = engine_with(Appends("a"), Refuses(), later, metrics=metrics, clock=clock)
    outcome = engine.check_reply("x")
    assert outcome.verdict is Verdict.VIOLATION
    assert not outcome.ok
    assert outcome.contract == "refuses"
    assert outcome.value == "xa"
    assert outcome.reasons == ["append_a: appended a", "refuses: always no"]
    assert metrics.snapshot().contract("chat_output/append_z") is None


def test_auto_fix_off_per_contract(metrics, clock) -> None:
    engine = engine_with(
        ContractSlot(Appends("a"), auto_fix=True),
        ContractSlot(Appends("b"), auto_fix=False),
        metrics=metrics,
        clock=clock,
    )
    outcome = engine.check_reply("x")
    assert (outcome.verdict, outcome.contract, outcome.value) == (Verdict.VIOLATION, "append_b", "xa")


def test_a_fix_returned_despite_auto_fix_off_becomes_a_violation(metrics, clock) -> None:
    class StubbornFixer(Contract):
        name = "stubborn"

        def check(self, value: Any, *, auto_fix: bool) -> Finding:
            return Finding.fixed(value.upper(), "shouted")

    engine = engine_with(ContractSlot(StubbornFixer(), auto_fix=False), metrics=metrics, clock=clock)
    outcome = engine.check_reply("quiet")
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.value == "quiet"
    assert outcome.reasons == ["stubborn: shouted (auto-fix is off)"]


def test_no_contracts_means_pass(metrics, clock) -> None:
    engine = ContractEngine(metrics=metrics, clock=clock)
    assert engine.check_reply("hi").verdict is Verdict.PASS
    assert engine.check_image_prompt("bear").verdict is Verdict.PASS
    assert engine.check_chat_input(candidate("hi")).verdict is Verdict.PASS


# --- bad input -------------------------------------------------------------------------------


def default_engine(build, **extra):
    return build(banned_terms=["badword"], **extra)


@pytest.mark.parametrize(
    "messages",
    [
        [],
        None,
        [PromptMessage("system", "sys", 5), PromptMessage("user", None, 0)],  # type: ignore[arg-type]
        [PromptMessage("system", "sys", 5), {"role": "user", "content": None}],
        [{"role": "system", "content": "sys"}, {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
    ],
)
def test_empty_and_contentless_input_is_refused_cleanly(build, messages) -> None:
    engine = default_engine(build)
    outcome = engine.check_chat_input(ChatCandidate(messages, 4000, 150, MODEL))  # type: ignore[arg-type]
    assert outcome.verdict is Verdict.VIOLATION
    assert outcome.contract == "not_empty"


def test_list_of_parts_content_is_checked_for_banned_terms(build) -> None:
    engine = default_engine(build)
    parts = [
        {"type": "text", "text": "what is a"},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "BADWORD"},
    ]
    prompt = ChatCandidate([{"role": "system", "content": "sys"}, {"role": "user", "content": parts}], 4000, 150, MODEL)
    outcome = engine.check_chat_input(prompt)  # type: ignore[arg-type]
    assert (outcome.verdict, outcome.contract) == (Verdict.VIOLATION, "banned_terms")


@pytest.mark.parametrize(
    "junk", [None, "hello", 42, ChatCandidate(messages=["not a message"], budget_tokens=1, reply_tokens=1, model=MODEL)]
)
def test_a_non_candidate_is_a_clear_violation(build, junk, caplog) -> None:
    engine = default_engine(build)
    with caplog.at_level(logging.ERROR, logger="bot.contracts"):
        outcome = engine.check_chat_input(junk)
    assert (outcome.verdict, outcome.contract) == (Verdict.VIOLATION, "engine")
    assert "not a ChatCandidate" in caplog.text


@pytest.mark.parametrize("reply", [None, 12, ["a", "b"], [{"type": "text", "text": "hi"}]])
def test_odd_reply_values_never_raise(build, reply) -> None:
    outcome = default_engine(build).check_reply(reply)
    assert outcome.verdict in (Verdict.PASS, Verdict.VIOLATION)


def test_enormous_inputs_get_a_result(build) -> None:
    engine = default_engine(build)
    huge = "honey bear " * 200_000
    reply = engine.check_reply(huge)
    assert reply.verdict is Verdict.FIXED and len(reply.value) <= 3000
    image = engine.check_image_prompt(huge)
    assert image.verdict is Verdict.FIXED and len(image.value) <= 4000
    chat = engine.check_chat_input(candidate("hi", huge, budget=4000))
    assert chat.verdict is Verdict.FIXED
    assert chat.value.messages[-1].content != huge
    assert engine.check_reply_partial(huge + " badword ").verdict is Verdict.VIOLATION


def test_dict_messages_are_accepted(build) -> None:
    engine = default_engine(build)
    prompt = ChatCandidate(
        [{"role": "system", "content": "sys", "tokens": 5}, {"role": "user", "content": "hi"}], 4000, 150, MODEL
    )
    outcome = engine.check_chat_input(prompt)  # type: ignore[arg-type]
    assert outcome.ok
    assert all(isinstance(m, PromptMessage) for m in outcome.value.messages)


# --- streaming prefixes ----------------------------------------------------------------------


def test_partial_checks_policy_only_and_never_fixes(build) -> None:
    engine = default_engine(build)
    assert engine.check_reply_partial("").verdict is Verdict.PASS  # no emptiness check
    assert engine.check_reply_partial("x" * 5000 + " ").verdict is Verdict.PASS  # no length check
    secret = engine.check_reply_partial("here: sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2 and")
    assert (secret.verdict, secret.contract) == (Verdict.VIOLATION, "reply_policy")
    assert secret.value == "here: sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2 and"


def test_partial_ignores_an_unfinished_last_word(build) -> None:
    engine = build(banned_terms=["ass"])
    assert engine.check_reply_partial("I am your ass").verdict is Verdict.PASS  # may become "assistant"
    assert engine.check_reply_partial("I am your assistant").verdict is Verdict.PASS
    assert engine.check_reply_partial("I am your ass ").verdict is Verdict.VIOLATION
    assert engine.check_reply_partial("I am your ass, really").verdict is Verdict.VIOLATION


# --- contract breaker ------------------------------------------------------------------------


def test_a_raising_contract_is_skipped_then_trips_and_recovers(metrics, clock, caplog) -> None:
    bomb = Exploding()
    engine = engine_with(bomb, Appends("!"), metrics=metrics, clock=clock, threshold=3, cooldown=60)
    with caplog.at_level(logging.INFO, logger="bot.contracts"):
        for _ in range(3):
            outcome = engine.check_reply("hi")
            assert (outcome.verdict, outcome.value) == (Verdict.FIXED, "hi!")  # the error counts as a pass
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(errors) == 3 and all(r.exc_info for r in errors)
    assert len(critical) == 1 and "chat_output/exploding" in critical[0].getMessage()

    caplog.clear()
    for _ in range(5):  # open: skipped, not even called
        assert engine.check_reply("hi").value == "hi!"
    assert bomb.calls == 3
    stats = engine.metrics().contract("chat_output/exploding")
    assert (stats.breaker_open, stats.skipped, stats.breaker_activations, stats.errors) == (True, 5, 1, 3)

    clock.advance(61)
    bomb.broken = False
    with caplog.at_level(logging.INFO, logger="bot.contracts"):
        engine.check_reply("hi")
    assert bomb.calls == 4
    assert any(r.levelno == logging.INFO and "works again" in r.getMessage() for r in caplog.records)
    assert not engine.metrics().contract("chat_output/exploding").breaker_open


def test_a_failed_trial_run_reopens_at_once(metrics, clock) -> None:
    bomb = Exploding()
    engine = engine_with(bomb, metrics=metrics, clock=clock, threshold=2, cooldown=10)
    engine.check_reply("a")
    engine.check_reply("a")
    clock.advance(10)
    engine.check_reply("a")  # the trial raises
    stats = engine.metrics().contract("chat_output/exploding")
    assert (stats.breaker_activations, stats.breaker_open, stats.errors) == (2, True, 3)


def test_errors_must_be_consecutive_to_trip(metrics, clock) -> None:
    bomb = Exploding()
    engine = engine_with(bomb, metrics=metrics, clock=clock, threshold=2)
    for broken in (True, False, True, False, True):
        bomb.broken = broken
        engine.check_reply("x")
    assert engine.metrics().contract("chat_output/exploding").breaker_activations == 0


def test_violations_never_trip_the_breaker(metrics, clock) -> None:
    engine = engine_with(Refuses(), metrics=metrics, clock=clock, threshold=1)
    for _ in range(10):
        assert engine.check_reply("x").verdict is Verdict.VIOLATION
    stats = engine.metrics().contract("chat_output/refuses")
    assert (stats.violations, stats.breaker_activations, stats.skipped) == (10, 0, 0)


def test_a_contract_returning_garbage_counts_as_an_error(metrics, clock) -> None:
    class Garbage(Contract):
        name = "garbage"

        def check(self, value: Any, *, auto_fix: bool) -> Finding:
            return "fine"  # type: ignore[return-value]

    engine = engine_with(Garbage(), metrics=metrics, clock=clock)
    assert engine.check_reply("x").verdict is Verdict.PASS
    assert engine.metrics().contract("chat_output/garbage").errors == 1


def test_breaker_and_metrics_survive_a_rebuild(metrics, clock) -> None:
    bomb = Exploding()
    engine_with(bomb, metrics=metrics, clock=clock, threshold=1).check_reply("x")
    rebuilt = engine_with(Exploding(), metrics=metrics, clock=clock, threshold=1)
    rebuilt.check_reply("x")
    stats = rebuilt.metrics().contract("chat_output/exploding")
    assert (stats.errors, stats.skipped, stats.breaker_open) == (1, 1, True)


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_count_exactly_what_happened(build) -> None:
    engine = build(
        banned_terms=["badword"],
        chat_input=[{"name": "not_empty"}, {"name": "banned_terms", "auto_fix": False}],
        chat_output=[
            {"name": "not_empty"},
            {"name": "reply_length", "settings": {"max_chars": 20}},
            {"name": "reply_policy"},
        ],
        image_prompt=[{"name": "prompt_length", "settings": {"max_chars": 10}}],
    )
    engine.check_chat_input(candidate("hello"))  # pass
    engine.check_chat_input(candidate("badword"))  # banned_terms violation
    engine.check_chat_input(candidate("  "))  # not_empty violation: banned_terms does not run
    engine.check_reply("Fine.")  # pass
    engine.check_reply("First sentence. And a second one.")  # reply_length fix
    engine.check_reply("")  # not_empty violation
    engine.check_image_prompt("a bear in the woods")  # prompt_length fix
    engine.check_reply_partial("badword here")  # partial violation, kept out of the rates

    snap = engine.metrics()
    counts = {s.key: (s.validations, s.violations, s.fixes, s.errors) for s in snap.contracts}
    assert counts == {
        "chat_input/not_empty": (3, 1, 0, 0),
        "chat_input/banned_terms": (2, 1, 0, 0),
        "chat_output/not_empty": (3, 1, 0, 0),
        "chat_output/reply_length": (2, 0, 1, 0),
        "chat_output/reply_policy": (2, 0, 0, 0),
        "image_prompt/prompt_length": (1, 0, 1, 0),
        "reply_partial/reply_policy": (1, 1, 0, 0),
    }
    stages = {s.stage: (s.checks, s.passed, s.fixed, s.violated) for s in snap.stages}
    assert stages == {
        "chat_input": (3, 1, 0, 2),
        "chat_output": (3, 1, 1, 1),
        "image_prompt": (1, 0, 1, 0),
        "reply_partial": (1, 0, 0, 1),
    }
    assert snap.checks == 7
    assert snap.violation_rate == pytest.approx(3 / 7)
    assert snap.auto_fix_success_rate == pytest.approx(2 / 5)  # 2 fixes, 3 violations
    assert all(s.p50_ms is not None and s.p50_ms <= s.p99_ms for s in snap.contracts)


def test_render_metrics(build, clock) -> None:
    engine = build()
    assert render_metrics(engine.metrics()) == ["contracts: nothing checked yet"]
    engine.check_reply("Hello!")
    engine.check_reply("")
    lines = render_metrics(engine.metrics())
    assert lines[0] == "contracts: 2 checks, violation rate 50.0%, auto-fix success 0.0%"
    assert any(line.startswith("  chat_output: 2 checks (1 passed, 0 fixed, 1 refused)") for line in lines)
    assert any(line.startswith("  chat_output/not_empty: 2 runs, 1 violations, 0 fixes, 0 errors") for line in lines)


def test_render_shows_an_open_breaker(metrics, clock) -> None:
    engine = engine_with(Exploding(), metrics=metrics, clock=clock, threshold=1, cooldown=120)
    engine.check_reply("x")
    clock.advance(20)
    engine.check_reply("x")
    line = next(line for line in render_metrics(engine.metrics()) if "exploding" in line)
    assert "breaker tripped 1x, OPEN for 100s more (1 skipped)" in line


def test_default_metrics_are_shared_between_engines() -> None:
    from bot.contracts import DEFAULT_METRICS

    first, second = ContractEngine(chat_output=[Refuses()]), ContractEngine(chat_output=[Refuses()])
    before = DEFAULT_METRICS.snapshot().contract("chat_output/refuses")
    first.check_reply("x")
    second.check_reply("x")
    after = second.metrics().contract("chat_output/refuses")
    assert after.validations == (before.validations if before else 0) + 2


def test_candidate_is_not_mutated(build) -> None:
    engine = build(banned_terms=["badword"], chat_input=[{"name": "banned_terms"}, {"name": "token_budget"}])
    prompt = candidate(*["word " * 50] * 6, "badword", budget=300, reply=100)
    before = replace(prompt, messages=list(prompt.messages))
    outcome = engine.check_chat_input(prompt)
    assert outcome.verdict is Verdict.FIXED
    assert prompt == before
