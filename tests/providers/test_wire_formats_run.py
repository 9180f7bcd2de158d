"""Issue 18: `lukas run` as a real subprocess, its chain pointed at the Anthropic and Ollama wire-format stand-ins.

Signed Slack events go in over HTTP; what Slack received, what each provider was sent and what the database holds
are checked (SQLite file read after the process stopped).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import aiohttp

from bench._lukas_process import lukas_process
from tests.harness import envelope, mention_event, message_event, new_ts, sign
from tests.providers.standins import streamed_text
from tests.standins.anthropic_api import AnthropicStandIn, overloaded
from tests.standins.ollama_api import OllamaStandIn
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

STREAMING = {"streaming": {"enabled": True, "flush_interval_seconds": 0.05, "update_interval_seconds": 0.5}}


def chain(api: AnthropicStandIn, ollama: OllamaStandIn) -> dict[str, object]:
    return {
        "providers": {
            "anthropic": {
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "api_base": api.base_url,
                "api_key": "sk-ant-run-0000",
                "context_window": 200_000,
                "price": {"input": 3.0, "output": 15.0},
                "retry": {"attempts": 2, "wait_min_seconds": 0, "wait_max_seconds": 0, "jitter_seconds": 0},
            },
            "ollama": {
                "provider": "ollama",
                "model": "llama3.2",
                "api_base": ollama.base_url,
                "context_window": 128_000,
                "price": {"input": 0, "output": 0},
            },
        },
        "chat_chain": ["anthropic", "ollama"],
    }


async def deliver(http: aiohttp.ClientSession, url: str, event: dict[str, object]) -> None:
    body = json.dumps(envelope(event)).encode()
    async with http.post(url, data=body, headers=sign(body)) as response:
        assert response.status == 200


async def until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def ledger(database: Path) -> list[tuple[str, str, int, int, float | None]]:
    with sqlite3.connect(database) as db:
        return db.execute(
            "SELECT provider, outcome, prompt_tokens, completion_tokens, cost_usd FROM llm_calls ORDER BY id"
        ).fetchall()


async def test_lukas_run_answers_through_anthropic_then_ollama(tmp_path: Path) -> None:
    database = tmp_path / "run.db"
    async with SlackStandIn() as slack, OpenAIStandIn() as unused, AnthropicStandIn() as api, OllamaStandIn() as ollama:
        overrides = chain(api, ollama)
        async with (
            lukas_process(
                tmp_path, database_url=f"sqlite:///{database}", slack=slack, llm=unused, overrides=overrides
            ) as lukas,
            aiohttp.ClientSession() as http,
        ):
            await deliver(http, lukas.events_url, message_event(text="Hello Lukas!"))
            await until(lambda: len(slack.posted_texts("D0DM")) == 1)
            api.faults.extend([overloaded()] * 2)  # Anthropic overloaded: both attempts fail, Ollama answers
            await deliver(http, lukas.events_url, message_event(text="Still there?"))
            await until(lambda: len(slack.posted_texts("D0DM")) == 2)
        assert slack.posted_texts("D0DM") == [api.reply, ollama.reply]
        assert api.requests[0].headers["x-api-key"] == "sk-ant-run-0000" and len(api.requests) == 3
        assert "Hello Lukas!" in json.dumps(ollama.requests[0].body["messages"])  # the history went along
        assert unused.requests == []
    rows = ledger(database)
    assert [(p, o) for p, o, *_ in rows] == [("anthropic", "ok"), ("anthropic", "server_error"), ("ollama", "ok")]
    assert rows[0][2:4] == (31, 12) and rows[0][4] is not None and rows[0][4] > 0
    assert rows[2][2:] == (27, 9, 0.0)


async def test_lukas_run_streams_from_anthropic_and_ollama(tmp_path: Path) -> None:
    database = tmp_path / "run.db"
    async with SlackStandIn() as slack, OpenAIStandIn() as unused, AnthropicStandIn() as api, OllamaStandIn() as ollama:
        overrides = {**chain(api, ollama), **STREAMING}
        async with (
            lukas_process(
                tmp_path, database_url=f"sqlite:///{database}", slack=slack, llm=unused, overrides=overrides
            ) as lukas,
            aiohttp.ClientSession() as http,
        ):
            await deliver(http, lukas.events_url, mention_event(text="stream please", channel="C0ONE", ts=new_ts()))
            await until(lambda: bool(slack.calls_to("chat.stopStream")))
            api.faults.extend([overloaded()] * 2)
            await deliver(http, lukas.events_url, mention_event(text="and again", channel="C0TWO", ts=new_ts()))
            await until(lambda: len(slack.calls_to("chat.stopStream")) == 2)
        assert streamed_text(slack, "C0ONE") == api.reply
        assert streamed_text(slack, "C0TWO") == ollama.reply
        assert api.requests[0].body["stream"] is True and ollama.requests[0].body["stream"] is True
    assert [(p, o) for p, o, *_ in ledger(database)] == [
        ("anthropic", "ok"),
        ("anthropic", "server_error"),
        ("ollama", "ok"),
    ]
