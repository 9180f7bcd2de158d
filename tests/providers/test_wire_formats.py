"""Issue 18: the normal chat path and the streaming path against Anthropic's Messages API and Ollama's chat API,
each spoken in its own wire format by a stand-in on 127.0.0.1 (history, trimming, retries, breaker, chain,
ledger), plus an OpenAI-compatible local server (vLLM, llama.cpp) through `provider: openai` + `api_base`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.admin.usage_logic import report_lines
from bot.admin.usage_service import collect_usage
from bot.config.loader import load_config
from tests.harness import mention_event, message_event, new_ts, running_lukas
from tests.helpers import free_port
from tests.providers.standins import streamed_text
from tests.standins import anthropic_api as anthropic
from tests.standins.anthropic_api import AnthropicStandIn
from tests.standins.ollama_api import OllamaStandIn, model_not_found
from tests.standins.openai_api import OpenAIStandIn

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config.yml")
FALLBACKS = set(CONFIG.fallbacks.lines)
ANTHROPIC_KEY = "sk-ant-test-0000000000"
PRICE = {"input": 3.0, "output": 15.0}
STREAMING = {"streaming": {"enabled": True, "flush_interval_seconds": 0.05, "update_interval_seconds": 0.5}}


def claude(stand_in: AnthropicStandIn, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "api_base": stand_in.base_url,
        "api_key": ANTHROPIC_KEY,
        "context_window": 200_000,
        "price": PRICE,
        **extra,
    }


def local(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "ollama", "model": "llama3.2", "api_base": base_url, "context_window": 128_000, **extra}


def chain(**providers: dict[str, Any]) -> dict[str, Any]:
    return {"providers": providers, "chat_chain": list(providers)}


def outcomes(rows: list[Any]) -> list[tuple[str, str, int]]:
    return [(r.provider, r.outcome, r.attempts) for r in rows]


# ----- Anthropic


async def test_anthropic_answers_with_history_system_prompt_key_and_ledger(tmp_path: Path, database_url: str) -> None:
    async with AnthropicStandIn() as api, OllamaStandIn() as ollama:
        overrides = chain(anthropic=claude(api), ollama=local(ollama.base_url))
        async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
            await h.send(message_event(text="Hi Lukas, do you like honey?"))
            await h.settle()
            await h.send(message_event(text="And blueberries?"))
            await h.settle()

            assert h.slack.posted_texts("D0DM") == [api.reply, api.reply]
            first, second = (r.body for r in api.requests)
            assert api.requests[0].headers["x-api-key"] == ANTHROPIC_KEY
            assert api.requests[0].path == "/v1/messages" and "anthropic-version" in api.requests[0].headers
            assert CONFIG.persona.system_prompt.strip()[:60] in first["system"]  # Anthropic's separate system field
            assert first["model"] == "claude-sonnet-4-5" and first["max_tokens"] == CONFIG.llm.max_tokens
            texts = [
                m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in second["messages"]
            ]
            assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
            assert "do you like honey?" in texts[0] and texts[1] == api.reply and "blueberries" in texts[2]
            assert ollama.requests == []

            rows = await h.llm_calls()
            assert outcomes(rows) == [("anthropic", "ok", 1), ("anthropic", "ok", 1)]
            assert (rows[0].prompt_tokens, rows[0].completion_tokens) == (31, 12)
            assert rows[0].cost_usd == pytest.approx((31 * 3.0 + 12 * 15.0) / 1_000_000)


async def test_anthropic_history_is_trimmed_to_the_budget(tmp_path: Path, database_url: str) -> None:
    async with AnthropicStandIn(reply="Short.") as api:
        overrides = {**chain(anthropic=claude(api)), "llm": {"context_budget_tokens": 700, "max_tokens": 100}}
        async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
            for index in range(4):
                await h.send(message_event(text=f"message {index} " + "honey " * 120))
                await h.settle()
            last = api.requests[-1].body["messages"]
            joined = " ".join(str(m["content"]) for m in last)
            assert "message 3" in joined and "message 0" not in joined  # oldest dropped first, newest kept


async def test_anthropic_429_retry_after_and_529_overloaded_are_retried(tmp_path: Path, database_url: str) -> None:
    async with (
        AnthropicStandIn() as api,
        running_lukas(tmp_path, database_url, overrides=chain(anthropic=claude(api))) as h,
    ):
        api.faults.extend([anthropic.rate_limited(retry_after=2), anthropic.overloaded()])
        await h.send(message_event(text="busy?"))
        await h.settle()
        assert len(api.requests) == 3
        assert h.waits[0] == 2.0  # Anthropic's retry-after header
        assert h.slack.posted_texts("D0DM") == [api.reply]
        assert outcomes(await h.llm_calls()) == [("anthropic", "ok", 3)]


async def test_anthropic_overloaded_opens_its_breaker_and_ollama_answers(tmp_path: Path, database_url: str) -> None:
    async with AnthropicStandIn() as api, OllamaStandIn() as ollama:
        overrides = chain(
            anthropic=claude(api, retry={"attempts": 2}, breaker={"fail_max": 2, "reset_seconds": 60}),
            ollama=local(ollama.base_url, price={"input": 0, "output": 0}),
        )
        async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
            api.faults.extend([anthropic.overloaded()] * 4)
            for text in ("one", "two", "three"):
                await h.send(message_event(text=text))
                await h.settle()
            assert len(api.requests) == 4  # 2 + 2 attempts, then the breaker is open: not called for "three"
            assert h.slack.posted_texts("D0DM") == [ollama.reply] * 3
            assert h.lukas.services.gateway.breaker_states()["anthropic:claude-sonnet-4-5"] == "open"
            assert outcomes(await h.llm_calls()) == [
                ("anthropic", "server_error", 2),
                ("ollama", "ok", 1),
                ("anthropic", "server_error", 2),
                ("ollama", "ok", 1),
                ("anthropic", "breaker_open", 0),
                ("ollama", "ok", 1),
            ]


async def test_anthropic_prompt_too_long_is_not_retried_and_goes_to_a_larger_window(
    tmp_path: Path, database_url: str
) -> None:
    async with AnthropicStandIn() as api, OllamaStandIn() as ollama:
        overrides = chain(
            anthropic=claude(api, context_window=100_000), ollama=local(ollama.base_url, context_window=256_000)
        )
        async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
            api.faults.append(anthropic.prompt_too_long())
            await h.send(message_event(text="a long story"))
            await h.settle()
            assert len(api.requests) == 1
            assert outcomes(await h.llm_calls()) == [("anthropic", "context_length", 1), ("ollama", "ok", 1)]
            assert h.lukas.services.gateway.breaker_states()["anthropic:claude-sonnet-4-5"] == "closed"


async def test_a_model_the_provider_rejects_is_not_retried_and_admins_are_told_once(
    tmp_path: Path, database_url: str
) -> None:
    async with AnthropicStandIn() as api, OllamaStandIn() as ollama:
        overrides = {
            **chain(anthropic=claude(api, model="claude-nope"), ollama=local(ollama.base_url)),
            "admins": ["U0ADMIN"],
        }
        async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
            api.faults.extend([anthropic.unknown_model("claude-nope")] * 2)
            for text in ("one", "two"):
                await h.send(message_event(text=text))
                await h.settle()
            assert len(api.requests) == 2  # one request per message: never retried
            admin_dms = [c for c in h.slack.calls_to("chat.postMessage") if c.params["channel"] == "D0ADMIN"]
            assert len(admin_dms) == 1
            assert "does not know the model 'claude-nope'" in admin_dms[0].text
            assert ANTHROPIC_KEY not in admin_dms[0].text
            assert h.slack.posted_texts("D0DM") == [ollama.reply] * 2
            assert outcomes(await h.llm_calls())[:2] == [("anthropic", "model_not_found", 1), ("ollama", "ok", 1)]
            assert h.lukas.services.gateway.breaker_states()["anthropic:claude-nope"] == "closed"


async def test_anthropic_streams_its_server_sent_events_into_a_thread(tmp_path: Path, database_url: str) -> None:
    reply = "Honey, clover and a long nap in the sun sound like a perfect bear day to me!"
    async with (
        AnthropicStandIn(reply=reply) as api,
        running_lukas(tmp_path, database_url, overrides={**chain(anthropic=claude(api)), **STREAMING}) as h,
    ):
        await h.send(mention_event(text="what is a good day?", ts=new_ts()))
        await h.wait_until(lambda: bool(h.slack.calls_to("chat.stopStream")))
        await h.settle()
        assert api.requests[0].body["stream"] is True
        assert streamed_text(h.slack, "C0GENERAL") == reply
        (row,) = await h.llm_calls()
        assert (row.provider, row.outcome, row.prompt_tokens, row.completion_tokens) == ("anthropic", "ok", 31, 12)
        assert (await h.messages())[-1].content == reply


# ----- Ollama (a local model, no key)


async def test_ollama_answers_and_streams_without_a_key_and_unpriced_cost_is_unknown(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        OllamaStandIn() as ollama,
        running_lukas(tmp_path, database_url, overrides={**chain(ollama=local(ollama.base_url)), **STREAMING}) as h,
    ):
        await h.send(message_event(text="hello cave bear"))  # a DM: post + update while streaming
        await h.settle()
        await h.send(mention_event(text="and in a thread?", ts=new_ts()))
        await h.wait_until(lambda: bool(h.slack.calls_to("chat.stopStream")))
        await h.settle()

        assert [r.path for r in ollama.requests] == ["/api/chat", "/api/chat"]
        assert all(r.body["stream"] is True for r in ollama.requests)
        assert "authorization" not in ollama.requests[0].headers
        assert ollama.requests[0].body["messages"][0]["role"] == "system"
        assert ollama.requests[0].body["options"]["num_predict"] == CONFIG.llm.max_tokens
        assert streamed_text(h.slack, "C0GENERAL") == ollama.reply
        rows = await h.llm_calls()
        assert [(r.provider, r.outcome, r.prompt_tokens, r.completion_tokens) for r in rows] == [
            ("ollama", "ok", 27, 9)
        ] * 2
        assert [r.cost_usd for r in rows] == [None, None]  # no price: unknown, not $0

        usage = await collect_usage(h.lukas.services.sessions, days=1)
        text = "\n".join(report_lines(data=usage, days=1, chat_budget_usd=None, image_budget_usd=None))
        assert "Model calls: 2, cost unknown (no price in config.yml)" in text
        assert "ollama llama3.2: 2 calls" in text and "$0.0000" not in text.split("Pictures")[0]


async def test_an_ollama_server_that_is_down_trips_the_breaker_with_one_clear_log_line(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    overrides = chain(ollama=local(down, breaker={"fail_max": 1, "reset_seconds": 60}, price={"input": 0, "output": 0}))
    caplog.set_level(logging.INFO, logger="bot.llm.gateway")
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        for text in ("anyone home?", "still there?"):
            await h.send(message_event(text=text))
            await h.settle()
        assert all(text in FALLBACKS for text in h.slack.posted_texts("D0DM"))
        assert len(h.slack.posted_texts("D0DM")) == 2
        assert outcomes(await h.llm_calls()) == [("ollama", "server_error", 3), ("ollama", "breaker_open", 0)]
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        (down_line,) = [line for line in errors if "Failed to connect to Ollama" in line]  # one, naming the cause
        assert "gave no answer after 3 attempt(s): server_error" in down_line


async def test_ollama_model_not_pulled_is_not_retried(tmp_path: Path, database_url: str) -> None:
    async with OllamaStandIn() as ollama:
        overrides = {**chain(ollama=local(ollama.base_url, model="llama9")), "admins": ["U0ADMIN"]}
        async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
            ollama.faults.append(model_not_found("llama9"))
            await h.send(message_event(text="hi"))
            await h.settle()
            assert len(ollama.requests) == 1
            assert outcomes(await h.llm_calls()) == [("ollama", "model_not_found", 1)]
            (dm,) = [c for c in h.slack.calls_to("chat.postMessage") if c.params["channel"] == "D0ADMIN"]
            assert "llama9" in dm.text and "try pulling it first" in dm.text


# ----- an OpenAI-compatible local server (vLLM, llama.cpp's server): provider openai + api_base


async def test_an_openai_compatible_local_server_via_api_base(tmp_path: Path, database_url: str) -> None:
    async with OpenAIStandIn(reply="Served by a local vLLM bear.") as server:
        vllm = {
            "provider": "openai",
            "model": "Qwen/Qwen2.5-7B-Instruct",
            "api_base": server.base_url,
            "api_key": "not-needed-locally",
            "context_window": 32_768,
            "price": {"input": 0, "output": 0},
        }
        async with running_lukas(tmp_path, database_url, overrides=chain(vllm=vllm)) as h:
            await h.send(message_event(text="hello local"))
            await h.settle()
            assert h.slack.posted_texts("D0DM") == ["Served by a local vLLM bear."]
            (request,) = server.chat_requests
            assert request.body["model"] == "Qwen/Qwen2.5-7B-Instruct"
            assert request.headers["authorization"] == "Bearer not-needed-locally"
            assert h.llm.chat_requests == []  # the harness's default OpenAI stand-in was not asked
            (row,) = await h.llm_calls()
            assert (row.provider, row.model, row.outcome, row.cost_usd) == (
                "vllm",
                "Qwen/Qwen2.5-7B-Instruct",
                "ok",
                0.0,
            )
