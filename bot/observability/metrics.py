"""Prometheus metrics (prometheus-client), one registry per running Lukas, served at GET /metrics.

Counters are fed by the chat service as things happen; breaker states, answers in flight and messages stuck in
`posting`/`failed` are read when /metrics is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BREAKER_VALUES = {"closed": 0.0, "half-open": 1.0, "open": 2.0}
# ChatService event names -> (counter, label)
_EVENTS = {
    "accepted": ("events", "accepted"),
    "rejected": ("events", "rejected"),
    "reply": ("answers", "reply"),
    "fallback": ("answers", "fallback"),
    "failed": ("answers", "failed"),
    "lease_taken_over": ("leases", "taken_over"),
    "lease_lost": ("leases", "lost"),
}


class LukasMetrics:
    def __init__(
        self,
        *,
        breakers: Callable[[], Mapping[str, str]] = dict,
        in_flight: Callable[[], int] = lambda: 0,
    ) -> None:
        self.registry = CollectorRegistry()
        self._events = Counter("lukas_events", "Slack events by outcome", ["outcome"], registry=self.registry)
        self._answers = Counter("lukas_answers", "Answers posted, by kind", ["kind"], registry=self.registry)
        self._leases = Counter("lukas_leases", "Answer leases taken over or lost", ["what"], registry=self.registry)
        self._latency = Histogram(
            "lukas_model_latency_seconds",
            "Model request latency per provider",
            ["provider"],
            buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
            registry=self.registry,
        )
        self._tokens = Counter(
            "lukas_tokens", "Tokens by provider and kind", ["provider", "kind"], registry=self.registry
        )
        self._cost = Counter("lukas_cost_usd", "Model cost in US dollars", ["provider"], registry=self.registry)
        self._stuck = Gauge("lukas_messages_stuck", "Questions stuck by state", ["state"], registry=self.registry)
        self.in_flight = in_flight
        self.registry.register(_Live(breakers, lambda: self.in_flight()))

    def event(self, name: str) -> None:
        counter, label = _EVENTS.get(name, (None, None))
        if counter == "events":
            self._events.labels(label).inc()
        elif counter == "answers":
            self._answers.labels(label).inc()
        elif counter == "leases":
            self._leases.labels(label).inc()

    def model_calls(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """One ledger row per provider tried (bot.chat.ledger_logic)."""
        for row in rows:
            provider = str(row.get("provider") or "?")
            if int(row.get("attempts") or 0) > 0:
                self._latency.labels(provider).observe(float(row.get("latency_ms") or 0) / 1000)
            self._tokens.labels(provider, "prompt").inc(int(row.get("prompt_tokens") or 0))
            self._tokens.labels(provider, "completion").inc(int(row.get("completion_tokens") or 0))
            self._cost.labels(provider).inc(float(row.get("cost_usd") or 0.0))

    def stuck(self, counts: Mapping[str, int]) -> None:
        for state, count in counts.items():
            self._stuck.labels(state).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Live:
    """Values read at scrape time."""

    def __init__(self, breakers: Callable[[], Mapping[str, str]], in_flight: Callable[[], int]) -> None:
        self._breakers, self._in_flight = breakers, in_flight

    def collect(self) -> Iterable[GaugeMetricFamily]:
        states = GaugeMetricFamily(
            "lukas_breaker_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)", labels=["breaker"]
        )
        for name, state in self._breakers().items():
            states.add_metric([name], _BREAKER_VALUES.get(state, -1.0))
        yield states
        yield GaugeMetricFamily("lukas_answers_in_flight", "Answers being worked on", value=self._in_flight())
