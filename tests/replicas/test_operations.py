"""GET /metrics (prometheus-client) and the stuck-question counts in /metrics and /lukas status."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from bot.store.models import Message
from tests.harness import message_event, running_lukas
from tests.standins.openai_api import LLMFault


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_metrics_count_events_answers_tokens_and_stuck_questions(tmp_path: Path, database_url: str) -> None:
    overrides = {"slack": {"auth_retry_seconds": 0}, "retry": {"chat": {"attempts": 1}}}
    async with running_lukas(tmp_path, database_url, overrides=overrides, stop_grace=1) as h:
        await h.send(message_event(text="hello", channel="D0M1"), event_id="EvM1")
        await h.send(message_event(text="hello", channel="D0M1"), event_id="EvM1")  # a redelivery: rejected
        await h.settle()
        h.llm.faults.append(LLMFault(status=400, code="invalid_request_error"))
        await h.send(message_event(text="again", channel="D0M2"))
        await h.settle()
        async with h.lukas.services.sessions() as session:  # one question left mid-post by a vanished worker
            await session.execute(
                update(Message)
                .where(Message.channel_id == "D0M2", Message.sender == "user")
                .values(reply_state="posting", lease_until=0.0)
            )
            await session.commit()
        async with h.http.get(f"{h.url}/metrics") as response:
            assert response.status == 200
            text = await response.text()
        assert _value(text, 'lukas_events_total{outcome="accepted"}') == 2
        assert _value(text, 'lukas_events_total{outcome="rejected"}') == 1
        assert _value(text, 'lukas_answers_total{kind="reply"}') == 1
        assert _value(text, 'lukas_answers_total{kind="fallback"}') == 1
        assert _value(text, 'lukas_tokens_total{kind="prompt",provider="openai"}') == 42
        assert _value(text, 'lukas_messages_stuck{state="posting"}') == 1
        assert 'lukas_breaker_state{breaker="openai:' in text
        assert "lukas_model_latency_seconds_bucket" in text
        assert _value(text, "lukas_answers_in_flight") == 0
        status = await h.lukas.admin.status()
        assert "Questions stuck: 1 in posting" in status
