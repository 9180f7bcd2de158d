"""The one place Lukas calls chat models: a chain of named providers (issue 8), each behind its own rate limiter,
tenacity retries and circuit breaker, answering whole or streamed.

The chain (bot.llm.chain_logic) decides where to go after a failure; this module only does the I/O. Never raises
for model trouble: the result says what happened, one ProviderCall per provider tried (the ledger rows), and the
caller answers with a fallback line when `text` is None.

Streaming: with `on_delta`, the reply is requested with `stream=True` and every piece of text is handed to
`on_delta` as it arrives (`on_delta` returns False to stop reading, e.g. when an output check fails). Retries and
the move to the next provider happen only before the first piece of text: once something may be visible in
Slack, a failure ends the reply (the caller replaces it with a fallback line).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from bot.breaker import Breaker
from bot.config.live import LiveConfig
from bot.config.schema import LukasConfig
from bot.errors import BreakerOpen, IncompleteStream, LukasError
from bot.llm import retry_logic as outcomes
from bot.llm.chain_logic import ProviderSpec, fits_window, next_index, resolve_chain
from bot.llm.clients import ClientPool
from bot.llm.cost_logic import cost_at
from bot.llm.provider_guards import ProviderGuards, Throttled
from bot.llm.results import ChatResult, ProviderCall
from bot.llm.stream_reader import DeltaSink, Reading, read_stream
from bot.shared.state import SharedState
from bot.tokens import counting as tokens

__all__ = ["ChatGateway", "ChatResult", "DeltaSink", "ProviderCall"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
AlertAdmins = Callable[[str, str], Awaitable[bool]]


class _GiveUp(LukasError):
    """Retry-After asked for longer than the policy allows."""


@dataclass
class _Link:
    call: ProviderCall
    text: str | None = None
    finish_reason: str | None = None
    streamed: bool = False
    stopped: bool = False


class ChatGateway:
    def __init__(
        self,
        *,
        config: LiveConfig,
        api_keys: Mapping[str, str] | None = None,
        alert_admins: AlertAdmins | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        shared: SharedState | None = None,
    ) -> None:
        self._config = config
        self.guards = ProviderGuards(shared=shared)  # breakers and rate limits
        self._alert_admins = alert_admins
        self._sleep = sleep  # retry waits (the test harness replaces it)
        self._rng = rng or random.Random()
        self._clients = ClientPool(api_keys=api_keys)
        self._chain: tuple[LukasConfig | None, tuple[ProviderSpec, ...]] = (None, ())
        self._named_chains: dict[tuple[str, ...], tuple[ProviderSpec, ...]] = {}
        self._unpriced_warned: set[str] = set()

    # ----- the chain for the config in force (resolved once per config)
    def chain(self, names: tuple[str, ...] | None = None) -> tuple[ProviderSpec, ...]:
        """The chain in force; `names` (a channel's `chain:`) picks those providers, in that order."""
        config = self._config.current
        if self._chain[0] is not config:
            self._chain = (config, resolve_chain(config))
            self._named_chains = {}
        if not names:
            return self._chain[1]
        named = self._named_chains.get(names)
        if named is None:
            named = self._named_chains[names] = resolve_chain(config, names=names)
        return named

    def breaker(self, spec: ProviderSpec) -> Breaker:
        return self.guards.breaker(spec)

    def breaker_states(self) -> dict[str, str]:
        return self.guards.breaker_states()

    def warm_up(self) -> int:
        """Build the chain's clients now (at start): the first was built on the first answer, a ~0.1 s stall of the
        event loop that every event arriving meanwhile waited for. Returns how many; one that cannot be built is
        left to the first call, which reports it as that provider's failure."""
        built = 0
        for spec in self.chain():
            try:
                self._clients.get(spec)
                built += 1
            except Exception as exc:
                log.warning("could not prepare the client for %s at start (%s)", spec.key, type(exc).__name__)
        return built

    async def aclose(self) -> None:
        await self._clients.aclose()

    # ----- the chain
    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        prompt_tokens: int | None = None,
        on_delta: DeltaSink | None = None,
        chain_names: tuple[str, ...] | None = None,
        max_tokens: int | None = None,
        prefer: str | None = None,
    ) -> ChatResult:
        """Ask the chain (or the providers `chain_names` picks, e.g. a channel's); `prompt_tokens` (counted by the
        caller) feeds the window check and the token limits. `max_tokens` caps this reply (default llm.max_tokens);
        `prefer` names a provider to try first (summaries)."""
        llm = self._config.current.llm
        reply_tokens = max_tokens or llm.max_tokens
        chain = self.chain(chain_names)
        if prefer is not None:
            chain = tuple(sorted(chain, key=lambda spec: spec.name != prefer))
        started = time.monotonic()
        estimate = (prompt_tokens if prompt_tokens is not None else _rough_tokens(messages)) + reply_tokens
        calls: list[ProviderCall] = []
        index: int | None = 0
        link: _Link | None = None
        while index is not None:
            spec = chain[index]
            if fits_window(spec=spec, prompt_tokens=prompt_tokens, reply_tokens=reply_tokens):
                link = await self._ask(
                    spec,
                    messages,
                    estimate=estimate,
                    prompt_tokens=prompt_tokens,
                    on_delta=on_delta,
                    reply_tokens=reply_tokens,
                )
            else:
                log.warning("prompt of %s tokens does not fit %s's window; skipping it", prompt_tokens, spec.key)
                link = _Link(ProviderCall(spec.name, spec.model, outcomes.CONTEXT_LENGTH, attempts=0))
            calls.append(link.call)
            if link.call.outcome == outcomes.OK or link.streamed:
                break  # answered, or text may already be visible: no other provider now
            index = next_index(chain=chain, index=index, outcome=link.call.outcome)
            if index is not None:
                log.warning("%s could not answer (%s); asking %s", spec.key, link.call.outcome, chain[index].key)
        assert link is not None
        call = link.call
        return ChatResult(
            text=link.text if call.outcome == outcomes.OK else None,
            outcome=call.outcome,
            provider=call.provider,
            model=call.model,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            cost_usd=call.cost_usd,
            latency_ms=int((time.monotonic() - started) * 1000),
            attempts=call.attempts,
            finish_reason=link.finish_reason,
            calls=tuple(calls),
            streamed=link.streamed,
            stopped=link.stopped,
        )

    # ----- one provider: rate limit, retries, breaker, one request (whole or streamed)
    async def _ask(
        self,
        spec: ProviderSpec,
        messages: list[dict[str, Any]],
        *,
        estimate: int,
        prompt_tokens: int | None,
        on_delta: DeltaSink | None,
        reply_tokens: int | None = None,
    ) -> _Link:
        llm = self._config.current.llm
        policy = spec.retry
        breaker = self.breaker(spec)
        limiter = self.guards.limiter(spec)
        started = time.monotonic()
        attempts = 0
        reading = Reading()

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            seconds = outcomes.backoff_seconds(
                attempt=state.attempt_number,
                policy=policy,
                retry_after=outcomes.retry_after_seconds(error) if error else None,
                jitter=self._rng.random(),
            )
            if seconds is None:
                raise _GiveUp()
            kind = outcomes.classify_error(error) if error else "?"
            log.info("model %s failed (%s); retrying in %.1fs", spec.key, kind, seconds)
            return seconds

        async def attempt() -> Any:
            nonlocal attempts, reading
            reading = Reading()
            client = self._clients.get(spec)  # before the rate limit: building a client must not eat into its slot
            if limiter is not None and spec.rate_limit is not None:
                await self.guards.wait_for_room(spec, limiter, estimate)
            attempts += 1
            sampling: dict[str, Any] = {"temperature": llm.temperature, "max_tokens": reply_tokens or llm.max_tokens}
            async with asyncio.timeout(spec.timeout_seconds + 5):
                if on_delta is None:
                    return await client.acompletion(model=spec.model, messages=messages, **sampling)  # type: ignore[arg-type]
                return await read_stream(client, spec.model, messages, sampling, on_delta, reading)

        def retryable(error: BaseException) -> bool:
            return not reading.streamed and outcomes.classify_error(error) in outcomes.RETRYABLE

        retrying = AsyncRetrying(
            stop=lambda state: state.attempt_number >= policy.attempts,
            wait=wait,
            retry=retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            # The breaker counts whole requests (retries included), not attempts: under concurrency, fast 5xx
            # answers arrive before slow successes, and per-attempt counting opened it during a 15 % error rate.
            async with breaker.guard():
                response: Any = await retrying(attempt)
        except BreakerOpen as error:
            cause = error.tripped_by  # this very failure opened it: log and store the real cause
            failure: tuple[str, BaseException | None] = (
                (outcomes.classify_error(cause), cause) if cause is not None else (outcomes.BREAKER_OPEN, error)
            )
        except _GiveUp:
            failure = (outcomes.RATE_LIMITED, None)
        except Throttled:
            failure = (outcomes.THROTTLED, None)
        except IncompleteStream as error:
            failure = (outcomes.INCOMPLETE, error)
        except Exception as error:
            failure = (outcomes.classify_error(error), error)
        else:
            return self._answered(
                spec,
                response,
                reading,
                streamed=on_delta is not None,
                started=started,
                attempts=attempts,
                prompt_tokens=prompt_tokens,
            )
        return await self._failed(
            spec, *failure, started=started, attempts=attempts, reading=reading, prompt_tokens=prompt_tokens
        )

    def _answered(
        self,
        spec: ProviderSpec,
        response: Any,
        reading: Reading,
        *,
        streamed: bool,
        started: float,
        attempts: int,
        prompt_tokens: int | None,
    ) -> _Link:
        llm = self._config.current.llm
        if not streamed:
            choice = response.choices[0] if getattr(response, "choices", None) else None
            text = (choice.message.content if choice and choice.message else None) or ""
            finish_reason = getattr(choice, "finish_reason", None)
            usage = getattr(response, "usage", None)
        else:
            text, finish_reason, usage = reading.text, reading.finish_reason, reading.usage
        used_prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        used_completion = int(getattr(usage, "completion_tokens", 0) or 0)
        if usage is None and streamed:  # a provider that does not report usage on streams
            used_prompt = prompt_tokens or 0
            used_completion = tokens.count_text(text, model=spec.model, default_encoding=llm.default_encoding)
        call = ProviderCall(
            provider=spec.name,
            model=spec.model,
            outcome=outcomes.OK,
            attempts=attempts,
            prompt_tokens=used_prompt,
            completion_tokens=used_completion,
            cost_usd=self._cost(spec, used_prompt, used_completion),
            latency_ms=int((time.monotonic() - started) * 1000),
        )
        log.info(
            "model %s answered in %d ms (%d+%d tokens, %s)%s",
            spec.key,
            call.latency_ms,
            used_prompt,
            used_completion,
            "cost unknown" if call.cost_usd is None else f"${call.cost_usd:.6f}",
            " (stopped by the output checks)" if reading.stopped else "",
        )
        return _Link(call, text, finish_reason, streamed=reading.streamed, stopped=reading.stopped)

    def _cost(self, spec: ProviderSpec, prompt_tokens: int, completion_tokens: int) -> float | None:
        """None when the model has no price: the ledger records the cost as unknown, never as $0."""
        if spec.price is None:
            if spec.model not in self._unpriced_warned:
                self._unpriced_warned.add(spec.model)
                log.warning(
                    "model %s has no price in config.yml (its provider's price: or prices:); its cost is recorded "
                    "as unknown",
                    spec.model,
                )
            return None
        return cost_at(spec.price, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    async def _failed(
        self,
        spec: ProviderSpec,
        outcome: str,
        error: BaseException | None,
        *,
        started: float,
        attempts: int,
        reading: Reading,
        prompt_tokens: int | None,
    ) -> _Link:
        if error is not None:
            detail = f"{type(error).__name__}: {error}"
        elif outcome == outcomes.THROTTLED:
            detail = "its rate limit would wait longer than rate_limit.max_wait_seconds"
        else:
            detail = "Retry-After longer than the retry policy allows"
        admin_problem = outcomes.admin_problem(
            outcome=outcome, name=spec.name, provider=spec.provider, model=spec.model, detail=detail
        )
        if admin_problem is not None:  # only an admin can fix it: log CRITICAL, DM the admins (once per interval)
            alert_key, text = admin_problem
            log.critical("model %s: %s", spec.key, text)
            if self._alert_admins is not None:
                await self._alert_admins(
                    alert_key,
                    f":warning: {text} Until then, the next provider in the chain (or a fallback line) answers.",
                )
        elif reading.streamed:
            log.error("model %s broke off mid-stream: %s (%s)", spec.key, outcome, detail)
        else:
            log.error("model %s gave no answer after %d attempt(s): %s (%s)", spec.key, attempts, outcome, detail)
        prompt, completion = 0, 0
        if reading.streamed:  # the provider bills what it streamed before breaking off
            llm = self._config.current.llm
            prompt = prompt_tokens or 0
            completion = tokens.count_text(reading.text, model=spec.model, default_encoding=llm.default_encoding)
        call = ProviderCall(
            provider=spec.name,
            model=spec.model,
            outcome=outcome,
            attempts=attempts,
            prompt_tokens=prompt,
            completion_tokens=completion,
            # Nothing billed unless text streamed; for a model without a price even that stays unknown.
            cost_usd=self._cost(spec, prompt, completion) if reading.streamed or spec.price is None else 0.0,
            latency_ms=int((time.monotonic() - started) * 1000),
        )
        return _Link(call, streamed=reading.streamed)


def _rough_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", ""))) // 4 + 4 for m in messages)
