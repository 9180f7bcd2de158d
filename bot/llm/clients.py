"""any-llm clients, one per provider settings and event loop (an instance bound to a closed loop fails)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from any_llm import AnyLLM

from bot.llm.chain_logic import ProviderSpec


class ClientPool:
    def __init__(self, *, api_keys: Mapping[str, str] | None = None) -> None:
        self._api_keys = dict(api_keys or {})  # <PROVIDER>_API_KEY from the environment, by any-llm provider
        self._clients: dict[tuple[Any, ...], AnyLLM] = {}

    def get(self, spec: ProviderSpec) -> AnyLLM:
        """The client for `spec` on the running loop. A provider's own api_key wins over the environment's."""
        loop = asyncio.get_running_loop()
        api_key = spec.api_key.get_secret_value() if spec.api_key else self._api_keys.get(spec.provider)
        key = (spec.name, spec.provider, spec.api_base, spec.timeout_seconds, api_key, id(loop))
        client = self._clients.get(key)
        if client is None:
            self._clients = {k: v for k, v in self._clients.items() if k[-1] == id(loop)}
            client = AnyLLM.create(
                spec.provider,
                api_key=api_key,
                api_base=spec.api_base,
                unified_exceptions=True,
                timeout=spec.timeout_seconds,
                **no_sdk_retries(spec.provider),
                **aiohttp_transport(spec.provider),
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        """Close the HTTP clients (at shutdown), so none is left to a closed event loop."""
        clients, self._clients = list(self._clients.values()), {}
        for llm in clients:
            close = getattr(getattr(llm, "client", None), "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    result = close()
                    if asyncio.iscoroutine(result):
                        await result


def no_sdk_retries(provider: str) -> dict[str, Any]:
    """`max_retries=0` for SDKs that retry by themselves, so tenacity is the only retry loop. any-llm refuses the
    argument for providers whose SDK has no retry setting (ollama, ...): they get nothing, and retry nothing."""
    support = getattr(AnyLLM.get_provider_class(provider), "MAX_RETRIES_SUPPORT", "unsupported")
    return {} if support == "unsupported" else {"max_retries": 0}


def aiohttp_transport(provider: str) -> dict[str, Any]:
    """The OpenAI SDK's aiohttp transport for providers any-llm builds on the plain `AsyncOpenAI` client.

    Its default httpx pool walks every request in flight on each send and close: with 200 answers at once that
    was the largest share of the answer path's CPU (bench/burst.py). aiohttp is already Lukas's HTTP stack.
    """
    from any_llm.providers.openai.base import BaseOpenAIProvider
    from openai import DefaultAioHttpClient

    provider_class = AnyLLM.get_provider_class(provider)
    if getattr(provider_class, "_init_client", None) is not BaseOpenAIProvider._init_client:
        return {}
    return {"http_client": DefaultAioHttpClient()}
