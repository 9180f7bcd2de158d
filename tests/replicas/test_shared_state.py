"""Several replicas sharing breaker state and provider rate limits through a real Redis; Redis going away and
coming back."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.harness import Harness, message_event, running_lukas
from tests.helpers import free_port
from tests.providers.standins import chain, provider
from tests.providers.test_rate_limit import most_in_any_window
from tests.standins.openai_api import LLMFault, OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

ONE_ATTEMPT = {"retry": {"chat": {"attempts": 1, "wait_min_seconds": 0, "wait_max_seconds": 0}}}


async def test_an_outage_seen_by_one_replica_opens_every_replicas_breaker(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    slack, llm = SlackStandIn(), OpenAIStandIn()
    llm.fault_for = lambda _body: LLMFault(status=500)  # the provider is down
    overrides = {**ONE_ATTEMPT, "breaker": {"fail_max": 2, "reset_seconds": 60}}
    env = {"REDIS_URL": redis_url}
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=overrides, env=env) as a,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=overrides, env=env) as b,
    ):
        for i in range(2):
            await a.send(message_event(text=f"anyone home {i}?", channel=f"D0OUT{i}"))
            await a.settle()
        assert len(llm.chat_requests) == 2
        assert set(b.lukas.services.gateway.breaker_states().values()) <= {"open"}  # B has not called yet...
        await b.send(message_event(text="and me?", channel="D0OUTB"))
        await b.settle()
        assert len(llm.chat_requests) == 2  # ...and B never asked the provider A found down
        assert set(b.lukas.services.gateway.breaker_states().values()) == {"open"}
        fallbacks = set(a.lukas.config.current.fallbacks.lines)
        assert len(slack.posted_texts()) == 3 and set(slack.posted_texts()) <= fallbacks
        assert [c.outcome for c in await b.llm_calls()][-1] == "breaker_open"


async def test_replicas_share_one_provider_rate_limit(tmp_path: Path, database_url: str, redis_url: str) -> None:
    slack, llm = SlackStandIn(), OpenAIStandIn()
    async with slack, llm:
        limited = provider(llm, "model-a", rate_limit={"requests_per_minute": 3, "max_wait_seconds": 10})
        overrides = chain(primary=limited)
        env = {"REDIS_URL": redis_url}
        async with (
            running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=overrides, env=env) as a,
            running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=overrides, env=env) as b,
        ):
            for h in (a, b):
                h.lukas.services.gateway.guards.rate_window_seconds = 2.0  # "per minute" becomes per 2 s: a fast test
            sends = [
                replica.send(message_event(text=f"hi {i}", channel=f"D0SRL{name}{i}"))
                for i in range(4)
                for name, replica in (("A", a), ("B", b))
            ]
            await asyncio.gather(*sends)
            await a.wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 8, timeout=30)
            await a.settle()
            await b.settle()
            arrivals = [r.at for r in llm.chat_requests]
            assert len(arrivals) == 8
            # Each replica alone would allow 3 per window (6 together); shared, the provider sees at most 3.
            assert most_in_any_window(arrivals, 1.7) <= 3
            assert {c.outcome for c in await a.llm_calls()} == {"ok"}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes] | None, list[str]]]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    holder: list[subprocess.Popen[bytes]] = [process]
    _wait_for(port)
    try:
        yield f"redis://127.0.0.1:{port}/0", process, command  # type: ignore[misc]
    finally:
        for running in holder:
            running.kill()
            running.wait()


def _wait_for(port: int) -> None:
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    for _ in range(100):
        try:
            client.ping()
            return
        except redis.exceptions.ConnectionError:
            import time

            time.sleep(0.05)
    raise AssertionError("redis-server did not start")


async def test_redis_going_away_falls_back_with_one_warning_and_sharing_resumes(
    tmp_path: Path,
    database_url: str,
    own_redis: tuple[str, subprocess.Popen[bytes], list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, process, command = own_redis
    llm = OpenAIStandIn()
    async with llm:
        limited = provider(llm, "model-a", rate_limit={"requests_per_minute": 100, "max_wait_seconds": 5})
        async with running_lukas(
            tmp_path, database_url, llm=llm, overrides=chain(primary=limited), env={"REDIS_URL": url}
        ) as h:
            await _survives_redis_going_away(h, llm, url, process, command, caplog)


async def _survives_redis_going_away(
    h: Harness,
    llm: OpenAIStandIn,
    url: str,
    process: subprocess.Popen[bytes],
    command: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    shared = h.lukas.services.gateway.guards.shared
    assert shared is not None
    shared.health._probe_every = 0.3
    await h.send(message_event(text="with redis", channel="D0RD0"))
    await h.settle()
    client = redis.Redis.from_url(url)
    assert client.keys("lukas:limits*") and client.keys("lukas:breaker*")  # shared state really is in Redis
    process.kill()
    process.wait()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for i in range(3):
            await h.send(message_event(text=f"without redis {i}", channel=f"D0RD{i + 1}"))
            await h.settle()
    assert len(h.slack.posted_texts()) == 4 and set(h.slack.posted_texts()) == {llm.reply}  # nobody noticed
    unreachable = [r for r in caplog.records if "is unreachable" in r.getMessage()]
    assert len(unreachable) == 1  # one warning, not one per call
    assert "127.0.0.1" in unreachable[0].getMessage()
    restarted = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(int(url.rsplit(":", 1)[1].split("/")[0]))
        await asyncio.sleep(0.4)
        with caplog.at_level(logging.WARNING):
            await h.send(message_event(text="redis is back", channel="D0RD9"))
            await h.settle()
        assert any("answers again" in r.getMessage() for r in caplog.records)
        assert client.keys("lukas:limits*")  # the new, empty Redis holds shared state again
        assert len(h.slack.posted_texts()) == 5
    finally:
        restarted.kill()
        restarted.wait()


async def test_a_healthy_provider_costs_about_one_breaker_read_a_second_not_three_per_message(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    async with running_lukas(tmp_path, database_url, env={"REDIS_URL": redis_url}) as h:
        shared = h.lukas.services.gateway.guards.shared
        assert shared is not None
        client = shared.health.client._client  # the redis-py client inside the health watcher
        breaker_commands: list[tuple[object, ...]] = []
        execute = client.execute_command

        def counted(*args: object, **options: object) -> object:
            if len(args) > 1 and str(args[1]).startswith("lukas:breaker") and args[0] != "SETNX":  # SETNX: set-up
                breaker_commands.append(args)
            return execute(*args, **options)

        client.execute_command = counted  # type: ignore[method-assign]
        started = asyncio.get_running_loop().time()
        for i in range(10):
            await h.send(message_event(text=f"hello {i}", channel=f"D0BR{i}", user=f"U0BR{i}"))
        await h.wait_until(lambda: len(h.slack.calls_to("chat.postMessage")) == 10)
        seconds = asyncio.get_running_loop().time() - started
        # Each call used to read the state twice and reset the failure counter: 30 round trips for 10 answers.
        assert 1 <= len(breaker_commands) <= 2 * (seconds + 1), breaker_commands
        assert {str(c[0]) for c in breaker_commands} <= {"GET"}  # nothing to write while all goes well
