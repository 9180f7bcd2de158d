"""Ask the installed any-llm about the chat models config.yml names: known? SDK installed? which key variable?

No network and no client is built: the provider's class is imported (any-llm records a missing SDK on the class
instead of failing) and its declared key variable is looked up in the environment by name only.
The decisions are in bot.config.provider_check_logic.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from typing import Any

from bot.config import provider_check_logic as logic
from bot.config.provider_check_logic import Finding, ProviderFacts
from bot.errors import ConfigError, StartupError


@cache
def known_providers() -> tuple[str, ...]:
    from any_llm import AnyLLM

    return tuple(sorted(AnyLLM.get_supported_providers()))


@cache
def lukas_extras() -> tuple[str, ...]:
    """The extras this installed Lukas offers (pyproject [project.optional-dependencies])."""
    try:
        return tuple(metadata.metadata(logic.DIST_NAME).get_all("Provides-Extra") or ())
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return ()


def _root_cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    return str(error)


def provider_facts(provider: str, *, own_api_key: bool, env: Mapping[str, str]) -> ProviderFacts:
    from any_llm.any_llm import AnyLLM

    if provider not in known_providers():
        return ProviderFacts(known=False)
    try:
        cls = AnyLLM.get_provider_class(provider)
    except ImportError as error:  # a provider module that imports its SDK at the top (gemini, vertexai)
        return ProviderFacts(known=True, missing_package=_root_cause(error))
    missing = cls.MISSING_PACKAGES_ERROR
    # Providers that override the key check (ollama, vllm, llamacpp, ...) take no key or an optional one.
    needs_key = cls._verify_and_set_api_key is AnyLLM._verify_and_set_api_key
    variable = getattr(cls, "ENV_API_KEY_NAME", None) or None
    return ProviderFacts(
        known=True,
        missing_package=str(missing) if missing is not None else None,
        key_variable=variable if needs_key else None,
        key_state=logic.key_state(
            needs_key=needs_key, key_variable=variable, provider=provider, own_api_key=own_api_key, env=env
        ),
    )


def check_chain(config: Any, *, env: Mapping[str, str] | None = None) -> list[Finding]:
    """Every finding for every chat model of `config` (a LukasConfig), in chain order."""
    source = os.environ if env is None else env
    findings: list[Finding] = []
    for link in logic.chain_links(config):
        findings += logic.provider_findings(
            link=link,
            facts=provider_facts(link.provider, own_api_key=link.own_api_key, env=source),
            known_providers=known_providers(),
            extras=lukas_extras(),
            context_budget_tokens=config.llm.context_budget_tokens,
            max_tokens=config.llm.max_tokens,
        )
    return findings


def require_installed(config: Any, *, path: str | None = None) -> None:
    """Raise ConfigError when a chat model's provider is unknown or its SDK is missing (`lukas run`, reloads)."""
    problems = [f.line() for f in check_chain(config) if logic.blocks_start(f)]
    if problems:
        raise ConfigError(problems, path=path)


def require_keys(config: Any) -> None:
    """`lukas run` (and `lukas config check --env`): every chat model's API key is in the environment."""
    problems = logic.missing_keys(check_chain(config))
    if problems:
        raise StartupError("missing API key(s): " + "; ".join(problems))


def missing_extras(extras: list[str]) -> list[str]:
    """Of `extras` (provider names), those whose provider SDK is not importable yet."""
    return [extra for extra in extras if provider_facts(extra, own_api_key=True, env={}).missing_package is not None]
