"""The benchmarks' own honesty check (bench/_common.py): a run whose replies were slow-down lines, fallbacks or
missing must fail loudly instead of printing their timings as the model's answers."""

from __future__ import annotations

import pytest

from bench._common import answer_problems, answers_asked, fail_on, wait_for
from bot.chat.memory_logic import summary_request

REPLY = "Hello from the honey pot! 🐻"
SLOW_DOWN = "Whoa, that's a lot of honey at once! 🐻 Let's slow down a little — I'll be ready again in a few minutes."


def test_a_run_where_every_message_got_the_models_answer_has_no_problems() -> None:
    assert answer_problems(expected=3, asked=3, texts=[REPLY] * 3, reply=REPLY) == []


def test_a_slow_down_line_counted_as_a_reply_is_named() -> None:
    problems = answer_problems(expected=3, asked=2, texts=[REPLY, REPLY, SLOW_DOWN], reply=REPLY)
    assert problems == [
        "the model was asked for 2 answers to 3 messages",
        f"1 of 3 replies were not the model's answer (a slow-down, limit or fallback line?), e.g. {SLOW_DOWN[:100]!r}",
    ]


def test_missing_replies_name_where_they_are_missing() -> None:
    problems = answer_problems(expected=3, asked=3, texts=[REPLY], reply=REPLY, missing=["D0002", "D0003"])
    assert problems == ["2 of 3 replies never came (no reply in D0002, D0003)"]


def test_a_message_answered_twice_is_a_problem() -> None:
    assert answer_problems(expected=1, asked=1, texts=[REPLY, REPLY], reply=REPLY) == [
        "2 replies to 1 messages: some were answered twice"
    ]


def test_memorys_summary_requests_are_not_counted_as_answers() -> None:
    summary = summary_request(persona_name="Lukas", previous=None, messages=[], max_words=100)
    answer = [{"role": "system", "content": "You are Lukas the Bear."}, {"role": "user", "content": "hi"}]
    assert answers_asked([{"messages": summary}, {"messages": answer}, {"messages": answer}]) == 2


def test_problems_end_the_benchmark_with_a_non_zero_exit_saying_what() -> None:
    fail_on([])
    with pytest.raises(SystemExit) as stopped:
        fail_on(["1 of 3 replies never came"])
    assert stopped.value.code == "benchmark FAILED: 1 of 3 replies never came"


async def test_waiting_for_replies_has_a_deadline() -> None:
    assert await wait_for(lambda: True, timeout=0.05) is True
    assert await wait_for(lambda: False, timeout=0.05) is False
