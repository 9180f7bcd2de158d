"""Leases with fencing: a writer that lost its lease never posts; a killed replica's answers are taken over once;
a clean shutdown hands unfinished answers back instead of failing them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.store import leases
from tests.harness import message_event, running_lukas
from tests.replicas.helpers import FAST_LEASES, expire_leases, kill, user_rows
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackStandIn

FALLBACKS = "fallback"


async def test_a_slow_worker_whose_lease_was_taken_over_stops_without_posting(
    tmp_path: Path, database_url: str
) -> None:
    slack, llm = SlackStandIn(), OpenAIStandIn(latency=1.5)
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=FAST_LEASES) as a,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=FAST_LEASES) as b,
    ):
        slow = a.lukas.services.chat
        for task in a.lukas._background:  # A's heartbeat stalls (a long GC pause, a database retry window...)
            if task.get_name() == "lease-keeper":
                task.cancel()
        await a.send(message_event(text="who answers me?"))
        await a.wait_until(lambda: len(llm.chat_requests) == 1)
        await expire_leases(a)  # ...so its lease runs out while the model is still thinking
        await b.wait_until(lambda: len(llm.chat_requests) == 2)  # B took it over
        await a.settle()
        await b.settle()
        assert len(slack.calls_to("chat.postMessage")) == 1
        (question,) = await user_rows(b)
        assert question.reply_state == "done"
        assert question.lease_owner == b.lukas.services.chat.instance_id and question.lease_epoch == 2
        replies = [m for m in await b.messages() if m.sender != "user"]
        assert [r.content for r in replies] == slack.posted_texts()
        assert len(await b.llm_calls()) == 1  # only the lease holder writes the ledger
        assert slow.instance_id != b.lukas.services.chat.instance_id


async def test_a_killed_replicas_answers_are_taken_over_exactly_once(tmp_path: Path, database_url: str) -> None:
    slack, llm = SlackStandIn(), OpenAIStandIn(latency=1.0)
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=FAST_LEASES) as a,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=FAST_LEASES) as b,
    ):
        for i in range(5):
            await a.send(message_event(text=f"question {i}", channel=f"D0KILL{i}"))
        await a.wait_until(lambda: len(llm.chat_requests) == 5)
        await kill(a)
        assert slack.calls_to("chat.postMessage") == []
        await b.wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 5)
        await b.settle()
        assert sorted(c.params["channel"] for c in slack.calls_to("chat.postMessage")) == [
            f"D0KILL{i}" for i in range(5)
        ]
        assert all(text == llm.reply for text in slack.posted_texts())  # the model's answers, not fallbacks
        rows = await user_rows(b)
        assert {r.reply_state for r in rows} == {"done"}
        assert {r.lease_owner for r in rows} == {b.lukas.services.chat.instance_id}


async def test_sigterm_hands_unfinished_answers_to_another_replica(tmp_path: Path, database_url: str) -> None:
    slack, llm = SlackStandIn(), OpenAIStandIn(latency=2.0)
    overrides = {"replicas": {**FAST_LEASES["replicas"], "shutdown_grace_seconds": 0.2}}
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=overrides) as b,
    ):
        async with running_lukas(
            tmp_path / "a", database_url, slack=slack, llm=llm, overrides=overrides, stop_grace=None
        ) as a:
            for i in range(3):
                await a.send(message_event(text=f"before the shutdown {i}", channel=f"D0TERM{i}"))
            await a.wait_until(lambda: len(llm.chat_requests) == 3)
            b.lukas.services.chat._taking = False  # B waits until A has stopped, to see what A left behind
        assert slack.calls_to("chat.postMessage") == []  # A posted nothing: not even a fallback
        rows = await user_rows(b)
        assert {r.reply_state for r in rows} == {"working"} and {r.lease_owner for r in rows} == {None}
        b.lukas.services.chat._taking = True
        await b.wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 3)
        await b.settle()
        assert all(text == llm.reply for text in slack.posted_texts())
        rows = await user_rows(b)
        assert {r.reply_state for r in rows} == {"done"}
        assert not [m for m in await b.messages() if m.sender == FALLBACKS]
        assert len(llm.chat_requests) == 6  # the model answered each question again, on B


async def test_sigterm_lets_answers_in_their_grace_period_finish(tmp_path: Path, database_url: str) -> None:
    llm = OpenAIStandIn(latency=0.5)
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=FAST_LEASES) as h:
        await h.send(message_event(text="quick one"))
        await h.wait_until(lambda: len(llm.chat_requests) == 1)
        released = await h.lukas.services.chat.shutdown(grace=5, posting_grace=5)
        assert released == []
        assert h.slack.posted_texts() == [llm.reply]
        assert [r.reply_state for r in await user_rows(h)] == ["done"]


async def test_a_restart_on_sqlite_picks_up_the_old_process_answers_at_once(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'one.db'}"
    slack, llm = SlackStandIn(), OpenAIStandIn(latency=3)
    long_leases = {"replicas": {"lease_seconds": 600}}
    async with slack, llm:
        async with running_lukas(tmp_path / "first", database_url, slack=slack, llm=llm, overrides=long_leases) as h:
            await h.send(message_event(text="are you there?"))
            await h.wait_until(lambda: len(llm.chat_requests) == 1)
            await kill(h)
        llm.latency = 0
        async with running_lukas(tmp_path / "second", database_url, slack=slack, llm=llm, overrides=long_leases) as h:
            # The lease still has ~10 minutes to run, but on SQLite the old process is certainly gone.
            await h.wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 1)
            await h.settle()
            assert [r.reply_state for r in await user_rows(h)] == ["done"]


async def test_the_database_clock_decides_expiry_not_the_replicas(tmp_path: Path, database_url: str) -> None:
    """A replica whose own clock jumps (or is skewed) neither loses nor steals leases: only the database's clock
    and the lease's own expiry count."""
    llm = OpenAIStandIn(latency=3)  # the answer is still running while the lease is looked at
    long_lease = {"replicas": {"lease_seconds": 600}}
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=long_lease) as h:
        chat = h.lukas.services.chat
        chat._taking = False
        await h.send(message_event(text="hold on"))
        # This process's view of time jumps a day ahead: it no longer trusts its own lease (it would not post)...
        keeper = chat.keeper
        (message_id,) = keeper.held()
        real_clock = keeper._clock
        keeper._clock = lambda: real_clock() + 86_400
        assert not keeper.owns(message_id)
        keeper._clock = real_clock
        # ...but in the database the lease is still running, so no replica may take it over.
        claimable = await h.lukas.services.store.run(
            lambda s: leases.claimable(s, owner="someone-else", posting_grace=1)
        )
        assert claimable == []
        db_now = await h.lukas.services.store.run(leases.clock)
        (row,) = await user_rows(h)
        assert row.lease_until is not None and 590 < row.lease_until - db_now <= 600
        chat._taking = True
        await h.settle()


async def test_renewal_keeps_a_long_answer_leased(tmp_path: Path, database_url: str) -> None:
    slack, llm = SlackStandIn(), OpenAIStandIn(latency=3.5)
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm, overrides=FAST_LEASES) as a,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm, overrides=FAST_LEASES) as b,
    ):
        await a.send(message_event(text="a long think"))
        await a.wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 1, timeout=15)
        await a.settle()
        await b.settle()
        assert len(llm.chat_requests) == 1  # the answer outlived the 2 s lease, but renewals kept it A's
        (row,) = await user_rows(a)
        assert (row.reply_state, row.lease_epoch) == ("done", 1)
        await asyncio.sleep(0)


async def test_a_replica_starting_beside_a_live_one_on_sqlite_takes_nothing_fresh(tmp_path: Path) -> None:
    """The SQLite start-up take-over is for claims older than this process: a live neighbour's new ones stay."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'one.db'}"
    slack, llm = SlackStandIn(), OpenAIStandIn(latency=1.5)
    async with (
        slack,
        llm,
        running_lukas(tmp_path / "b", database_url, slack=slack, llm=llm) as b,
        running_lukas(tmp_path / "a", database_url, slack=slack, llm=llm) as a,
    ):
        await a.send(message_event(text="mine"))
        chat_b = b.lukas.services.chat
        chat_b._foreign_now = True  # as if B's first sweep came only now
        assert await chat_b.sweep_once() == 0
        await a.settle()
        assert len(llm.chat_requests) == 1 and len(slack.calls_to("chat.postMessage")) == 1
