"""Config for providers (errors that name the field, secrets that never show) and the pure chain/stream decisions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config.loader import parse_config, summarize
from bot.errors import ConfigError
from bot.llm import retry_logic as outcomes
from bot.llm.chain_logic import counting_model, fits_window, next_index, resolve_chain, worst_case_seconds
from bot.slack.stream_logic import Finish, flush_delay, plan_finish, visible_prefix
from tests.harness import REPO_CONFIG, message_event, running_lukas
from tests.providers.standins import chain, provider
from tests.standins.openai_api import LLMFault, OpenAIStandIn

BASE = yaml.safe_load(REPO_CONFIG.read_text())
PRIMARY = {"provider": "openai", "model": "gpt-4.1-mini", "context_window": 1_000_000}
BACKUP = {"provider": "anthropic", "model": "claude-x", "context_window": 200_000, "price": {"input": 1, "output": 5}}


def config_with(env: dict[str, str] | None = None, **sections: Any):  # type: ignore[no-untyped-def]
    return parse_config(yaml.safe_dump({**BASE, **sections}), env=env or {})


def problems(**sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_with(**sections)
    return caught.value.problems


# ----- config: shape, errors, secrets


def test_the_shipped_config_is_a_chain_of_one_from_the_llm_block() -> None:
    config = config_with()
    (spec,) = resolve_chain(config)
    assert (spec.name, spec.provider, spec.model) == ("openai", "openai", "gpt-4.1-mini")
    assert spec.key == "openai:gpt-4.1-mini"  # the breaker keeps its name from before issue 8
    assert spec.retry == config.retry.chat and (spec.fail_max, spec.context_window, spec.rate_limit) == (5, None, None)
    assert spec.price is not None and spec.price.input == 0.40
    assert counting_model(config) == "gpt-4.1-mini"


def test_named_providers_resolve_with_overrides_and_defaults() -> None:
    config = config_with(
        providers={
            "primary": {**PRIMARY, "retry": {"attempts": 2}, "rate_limit": {"requests_per_minute": 10}},
            "backup": {**BACKUP, "breaker": {"fail_max": 2}, "timeout_seconds": 9},
        },
        chat_chain=["backup", "primary"],
    )
    backup, primary = resolve_chain(config)
    assert (backup.name, primary.name) == ("backup", "primary")
    assert primary.retry.attempts == 2 and primary.retry.wait_max_seconds == config.retry.chat.wait_max_seconds
    assert primary.price is not None and primary.price.output == 1.60  # from prices:
    assert primary.rate_limit is not None and primary.rate_limit.requests_per_minute == 10
    assert (backup.fail_max, backup.reset_seconds, backup.timeout_seconds) == (2, 60, 9)
    assert backup.rate_limit is None and counting_model(config) == "claude-x"


def test_a_chain_naming_an_undefined_provider_is_an_error_naming_the_entry() -> None:
    found = problems(providers={"primary": PRIMARY, "backup": BACKUP}, chat_chain=["primary", "backpu"])
    assert found == ["chat_chain[1]: 'backpu' is not defined under providers: (did you mean 'backup'?)"]
    assert problems(chat_chain=["primary"])[0].startswith("chat_chain[0]: 'primary' is not defined")
    assert problems(providers={"primary": PRIMARY}, chat_chain=["primary", "primary"]) == [
        "chat_chain: 'primary' is listed twice (entries 0 and 1)"
    ]


def test_a_model_with_no_price_is_valid_and_other_mistakes_are_errors_naming_the_field() -> None:
    # No price is not an error (issue 18): `lukas config check` warns, and the cost is recorded as unknown.
    unpriced = config_with(providers={"local": {"provider": "ollama", "model": "llama-9", "context_window": 8000}})
    assert resolve_chain(unpriced)[0].price is None
    assert problems(providers={"p": {**PRIMARY, "context_window": None}}) == [
        "providers.p.context_window: Input should be a valid integer"
    ]
    assert problems(providers={"p": {**PRIMARY, "retry": {"attemps": 2}}}) == [
        "providers.p.retry.attemps: unknown setting (did you mean 'attempts'?)"
    ]
    assert problems(providers={"p": {**PRIMARY, "retry": {"wait_min_seconds": 99}}})[0].startswith(
        "providers.p: retry: wait_min_seconds must not exceed wait_max_seconds"
    )
    assert problems(providers={"p": {**PRIMARY, "rate_limit": {"requests_per_minute": 0}}})[0].startswith(
        "providers.p.rate_limit.requests_per_minute:"
    )
    assert problems(assistant={"loading_messages": ["x"] * 11})[0].startswith("assistant.loading_messages:")


def test_api_keys_come_from_the_environment_and_never_show() -> None:
    secret = "sk-live-very-secret-0123456789"
    config = config_with(
        env={"BACKUP_KEY": secret},
        providers={"primary": PRIMARY, "backup": {**BACKUP, "api_key": "${BACKUP_KEY}"}},
        chat_chain=["primary", "backup"],
    )
    assert config.providers["backup"].api_key.get_secret_value() == secret
    assert config.providers["primary"].api_key is None  # empty: <PROVIDER>_API_KEY from the environment
    shown = "\n".join(summarize(config)) + repr(config) + str(resolve_chain(config))
    assert secret not in shown
    assert "chat chain: primary (openai:gpt-4.1-mini; " in shown and "backup (anthropic:claude-x; " in shown
    assert "own api_key" in shown and shown.count("-> fallback lines") == 1


async def test_a_providers_own_key_is_sent_and_never_logged_or_stored(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-backup-secret-abcdefghijklmnop"
    monkeypatch.setenv("LUKAS_TEST_BACKUP_KEY", secret)
    caplog.set_level(logging.DEBUG)
    a, b = OpenAIStandIn(), OpenAIStandIn(reply="from B")
    async with a, b:
        backup = provider(b, "model-b", api_key="${LUKAS_TEST_BACKUP_KEY}")
        async with running_lukas(
            tmp_path, database_url, llm=a, overrides=chain(primary=provider(a, "model-a"), backup=backup)
        ) as h:
            a.faults.append(LLMFault(401))
            await h.send(message_event(text="hello"))
            await h.settle()
            assert a.chat_requests[0].headers["authorization"] == "Bearer sk-test-key-000000000000"  # OPENAI_API_KEY
            assert b.chat_requests[0].headers["authorization"] == f"Bearer {secret}"
            stored = [vars(row) for row in await h.llm_calls()] + [vars(row) for row in await h.messages()]
            assert secret not in str(stored) and secret not in caplog.text
            assert [p.text for p in h.slack.calls_to("chat.postMessage")] == ["from B"]


# ----- the chain's decisions


def test_next_index_for_each_outcome() -> None:
    config = config_with(
        providers={
            "a": {**PRIMARY, "context_window": 8000},
            "b": {**BACKUP, "context_window": 8000},
            "c": {**BACKUP, "context_window": 100_000},
        },
        chat_chain=["a", "b", "c"],
    )
    links = resolve_chain(config)
    for outcome in (
        outcomes.SERVER_ERROR,
        outcomes.TIMEOUT,
        outcomes.RATE_LIMITED,
        outcomes.BREAKER_OPEN,
        outcomes.THROTTLED,
        outcomes.AUTH,
        outcomes.INVALID_REQUEST,
        outcomes.ERROR,
        outcomes.INCOMPLETE,
    ):
        assert next_index(chain=links, index=0, outcome=outcome) == 1, outcome
        assert next_index(chain=links, index=2, outcome=outcome) is None, outcome  # then the fallback lines
    assert next_index(chain=links, index=0, outcome=outcomes.OK) is None
    assert next_index(chain=links, index=0, outcome=outcomes.CONTENT_FILTER) is None
    assert next_index(chain=links, index=0, outcome=outcomes.CONTEXT_LENGTH) == 2  # b's window is no larger
    assert next_index(chain=links, index=2, outcome=outcomes.CONTEXT_LENGTH) is None
    assert fits_window(spec=links[0], prompt_tokens=7850, reply_tokens=150)
    assert not fits_window(spec=links[0], prompt_tokens=7851, reply_tokens=150)
    assert fits_window(spec=resolve_chain(config_with())[0], prompt_tokens=10**9, reply_tokens=150)  # unknown


def test_worst_case_covers_every_link() -> None:
    one = worst_case_seconds(resolve_chain(config_with()))
    assert one == 3 * (30 + 5) + 2 * 30  # the llm: block alone: as before issue 8
    two = config_with(
        providers={"a": PRIMARY, "b": {**BACKUP, "rate_limit": {"requests_per_minute": 5, "max_wait_seconds": 4}}},
        chat_chain=["a", "b"],
    )
    assert worst_case_seconds(resolve_chain(two)) == 2 * one + 3 * 4


# ----- streaming decisions


def test_only_whole_words_are_shown_and_never_more_than_a_message_holds() -> None:
    assert visible_prefix("Hello", limit=100) == ""
    assert visible_prefix("Hello wor", limit=100) == "Hello "
    assert visible_prefix("Hello world\n", limit=100) == "Hello world\n"
    assert visible_prefix("one two three four ", limit=9) == "one two "
    assert visible_prefix("aaaa bbbb cccc ", limit=10) == "aaaa bbbb "  # exactly the limit, never one more
    grown = ["", "I", "I am", "I am your ass", "I am your assistant", "I am your assistant."]
    shown = [visible_prefix(text, limit=100) for text in grown]
    assert shown == ["", "", "I ", "I am your ", "I am your ", "I am your "]  # never half of a (banned?) word


def test_flushes_are_spaced_but_the_first_goes_at_once() -> None:
    assert flush_delay(now=10.0, last_flush=None, interval=0.5) == 0
    assert flush_delay(now=10.2, last_flush=10.0, interval=0.5) == pytest.approx(0.3)
    assert flush_delay(now=11.0, last_flush=10.0, interval=0.5) == 0


def test_finishing_a_stream_appends_the_rest_or_rewrites_the_message() -> None:
    assert plan_finish(final="Hello bear!", shown="Hello ", streaming=True, limit=100) == Finish("bear!", None, ())
    assert plan_finish(final="Hello [redacted]", shown="Hello sk-", streaming=True, limit=100) == Finish(
        None, "Hello [redacted]", ()
    )
    long = ("word " * 30).strip()
    plan = plan_finish(final=long, shown="word ", streaming=True, limit=60)
    assert plan.append is None and plan.rewrite and len(plan.rewrite) <= 60 and plan.more
    assert " ".join([plan.rewrite, *plan.more]).split() == long.split()
    assert plan_finish(final="Hi there", shown="Hi there", streaming=False, limit=100) == Finish(None, None, ())
    assert plan_finish(final="Hi there", shown="Hi ", streaming=False, limit=100) == Finish(None, "Hi there", ())
