"""The one place Lukas calls a chat model: any-llm, under tenacity retries and a circuit breaker.

Never raises for model trouble: the result says what happened, and the caller answers with a fallback
line when `text` is None.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from any_llm import AnyLLM
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from bot.config.live import LiveConfig
from bot.llm import retry_logic as outcomes
from bot.llm.breaker import BreakerOpen, ModelBreaker
from bot.llm.cost_logic import chat_cost

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
AlertAdmins = Callable[[str, str], Awaitable[bool]]
_NOT_COUNTED_BY_BREAKER = frozenset(
    {outcomes.AUTH, outcomes.INVALID_REQUEST, outcomes.CONTENT_FILTER, outcomes.CONTEXT_LENGTH}
)


@dataclass(frozen=True)
class ChatResult:
    text: str | None  # None: the model could not answer; use a fallback line
    outcome: str
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0
    attempts: int = 0
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None


class _GiveUp(Exception):
    """Retry-After asked for longer than the policy allows."""


class ChatGateway:
    def __init__(
        self,
        *,
        config: LiveConfig,
        api_keys: Mapping[str, str] | None = None,
        alert_admins: AlertAdmins | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._api_keys = dict(api_keys or {})
        self._alert_admins = alert_admins
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clients: dict[tuple[Any, ...], AnyLLM] = {}
        self._breakers: dict[str, ModelBreaker] = {}
        self._unpriced_warned: set[str] = set()

    # ----- breakers (one per provider:model, so a new model starts with a fresh breaker)
    def breaker(self, provider: str, model: str) -> ModelBreaker:
        key = f"{provider}:{model}"
        settings = self._config.current.breaker
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = ModelBreaker(
                name=key,
                fail_max=settings.fail_max,
                reset_seconds=settings.reset_seconds,
                ignore=lambda error: outcomes.classify_error(error) in _NOT_COUNTED_BY_BREAKER,
            )
            self._breakers[key] = breaker
        else:
            breaker.configure(fail_max=settings.fail_max, reset_seconds=settings.reset_seconds)
        return breaker

    def breaker_states(self) -> dict[str, str]:
        return {key: breaker.state for key, breaker in self._breakers.items()}

    # ----- the any-llm client, one per event loop (an instance bound to a closed loop fails)
    def _client(self, *, provider: str, api_base: str | None, timeout: float) -> AnyLLM:
        loop = asyncio.get_running_loop()
        key = (provider, api_base, timeout, id(loop))
        client = self._clients.get(key)
        if client is None:
            self._clients = {k: v for k, v in self._clients.items() if k[-1] == id(loop)}
            api_key = self._api_keys.get(provider)
            client = AnyLLM.create(
                provider, api_key=api_key, api_base=api_base, unified_exceptions=True, max_retries=0, timeout=timeout
            )
            self._clients[key] = client
        return client

    async def complete(self, messages: list[dict[str, Any]]) -> ChatResult:
        config = self._config.current
        llm, policy = config.llm, config.retry.chat
        provider, model = llm.provider, llm.model
        breaker = self.breaker(provider, model)
        started = time.monotonic()
        attempts = 0

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
            log.info(
                "model %s:%s failed (%s); retrying in %.1fs",
                provider,
                model,
                outcomes.classify_error(error) if error else "?",
                seconds,
            )
            return seconds

        async def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            async with breaker.guard():
                client = self._client(provider=provider, api_base=llm.api_base, timeout=llm.timeout_seconds)
                return await asyncio.wait_for(
                    client.acompletion(
                        model=model, messages=messages, temperature=llm.temperature, max_tokens=llm.max_tokens
                    ),
                    timeout=llm.timeout_seconds + 5,
                )

        retrying = AsyncRetrying(
            stop=lambda state: state.attempt_number >= policy.attempts,
            wait=wait,
            retry=retry_if_exception(lambda e: outcomes.classify_error(e) in outcomes.RETRYABLE),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            response = await retrying(attempt)
        except BreakerOpen as error:
            outcome = outcomes.classify_error(error.tripped_by) if error.tripped_by else outcomes.BREAKER_OPEN
            return await self._failed(provider, model, outcome, started, attempts, error)
        except _GiveUp:
            return await self._failed(provider, model, outcomes.RATE_LIMITED, started, attempts, None)
        except Exception as error:
            return await self._failed(provider, model, outcomes.classify_error(error), started, attempts, error)
        return self._succeeded(response, provider=provider, model=model, started=started, attempts=attempts)

    def _succeeded(self, response: Any, *, provider: str, model: str, started: float, attempts: int) -> ChatResult:
        config = self._config.current
        choice = response.choices[0] if getattr(response, "choices", None) else None
        text = (choice.message.content if choice and choice.message else None) or ""
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = chat_cost(
            prices=config.prices, model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        if cost is None and model not in self._unpriced_warned:
            self._unpriced_warned.add(model)
            log.warning("model %s has no price in config.yml (prices:); its cost is recorded as 0", model)
        latency_ms = int((time.monotonic() - started) * 1000)
        log.info(
            "model %s:%s answered in %d ms (%d+%d tokens, $%.6f)",
            provider,
            model,
            latency_ms,
            prompt_tokens,
            completion_tokens,
            cost or 0.0,
        )
        return ChatResult(
            text=text,
            outcome=outcomes.OK,
            provider=provider,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost or 0.0,
            latency_ms=latency_ms,
            attempts=attempts,
            finish_reason=getattr(choice, "finish_reason", None),
        )

    async def _failed(
        self, provider: str, model: str, outcome: str, started: float, attempts: int, error: BaseException | None
    ) -> ChatResult:
        detail = f"{type(error).__name__}: {error}" if error else "Retry-After longer than retry.chat allows"
        if outcome == outcomes.AUTH:
            log.critical(
                "model %s:%s rejected our credentials (%s). Check the API key in the environment.",
                provider,
                model,
                detail,
            )
            if self._alert_admins is not None:
                await self._alert_admins(
                    "llm_auth",
                    f":warning: Lukas cannot log in to {provider} (model {model}): {detail}. "
                    "He is answering with fallback lines until the API key in his environment is fixed.",
                )
        else:
            log.error(
                "model %s:%s gave no answer after %d attempt(s): %s (%s)", provider, model, attempts, outcome, detail
            )
        return ChatResult(
            text=None,
            outcome=outcome,
            provider=provider,
            model=model,
            attempts=attempts,
            latency_ms=int((time.monotonic() - started) * 1000),
        )
