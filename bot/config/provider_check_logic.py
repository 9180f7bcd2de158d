"""Can each chat model in config.yml actually be used? Pure decisions (issue 18).

The facts (is the provider known to any-llm, is its SDK installed, which variable holds its key, is that variable
set) are gathered by bot.llm.provider_probe; this module turns them into what `lukas config check` prints, what
stops `lukas run`, what a live reload refuses, and which pyproject extras an install needs.

Nothing here touches the network: a key that is set but wrong is only found at the first request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from bot.config.providers_schema import price_for

DIST_NAME = "lukas-the-bear"
# Extras of our own that are not a provider: never suggested for a provider.
NOT_PROVIDER_EXTRAS = frozenset({"dev", "all"})

Level = Literal["error", "warning", "ok"]
KeyState = Literal["config", "set", "empty", "unset", "not_needed", "unknown"]


@dataclass(frozen=True)
class ChainLink:
    """One chat model of the chain as config.yml names it (no secrets: only whether it has its own key)."""

    where: str  # the config path admins edit: "providers.claude" or "llm"
    provider: str
    model: str
    own_api_key: bool
    priced: bool
    context_window: int | None  # None: not configured (the llm: block has none)


@dataclass(frozen=True)
class ProviderFacts:
    """What the installed any-llm says about one provider name."""

    known: bool
    missing_package: str | None = None  # why its SDK cannot be imported; None when it can
    key_variable: str | None = None  # the environment variable any-llm reads; None when no key is needed
    key_state: KeyState = "unknown"


@dataclass(frozen=True)
class Finding:
    level: Level
    where: str
    text: str
    kind: str = "ok"  # unknown_provider | missing_package | api_key | price | context_window | ok

    def line(self) -> str:
        return f"{self.where}: {self.text}"


def chain_links(config: Any) -> list[ChainLink]:
    """The chat models Lukas will ask, in order (a LukasConfig; the caption writer uses the same chain)."""
    if not config.providers:
        llm = config.llm
        return [
            ChainLink(
                where="llm",
                provider=llm.provider,
                model=llm.model,
                own_api_key=False,
                priced=price_for(prices=config.prices, model=llm.model) is not None,
                context_window=None,
            )
        ]
    links = []
    for name in config.chat_chain or list(config.providers):
        p = config.providers[name]
        links.append(
            ChainLink(
                where=f"providers.{name}",
                provider=p.provider,
                model=p.model,
                own_api_key=p.api_key is not None,
                priced=p.price is not None or price_for(prices=config.prices, model=p.model) is not None,
                context_window=p.context_window,
            )
        )
    return links


def extra_for(*, provider: str, extras: Iterable[str]) -> str | None:
    """The pyproject extra that installs `provider`'s SDK, or None when Lukas has no extra of that name."""
    name = provider.strip().lower()
    return name if name in set(extras) - NOT_PROVIDER_EXTRAS else None


def install_command(*, provider: str, extras: Iterable[str]) -> str:
    extra = extra_for(provider=provider, extras=extras)
    if extra is not None:
        return (
            f"pip install '{DIST_NAME}[{extra}]' "
            f"(./scripts/run does this by itself; Docker: --build-arg LUKAS_EXTRAS={extra})"
        )
    return f"pip install 'any-llm-sdk[{provider}]' into Lukas's environment"


def provider_findings(
    *,
    link: ChainLink,
    facts: ProviderFacts,
    known_providers: Iterable[str],
    extras: Iterable[str],
    context_budget_tokens: int,
    max_tokens: int,
) -> list[Finding]:
    """Everything worth saying about one link, worst first. Errors make `lukas config check` exit 1."""
    where = f"{link.where} ({link.provider}:{link.model})"
    if not facts.known:
        known = ", ".join(sorted(known_providers))
        return [
            Finding(
                "error",
                where,
                f"any-llm has no provider {link.provider!r}. Known providers: {known}",
                "unknown_provider",
            )
        ]
    findings: list[Finding] = []
    if facts.missing_package is not None:
        findings.append(
            Finding(
                "error",
                where,
                f"the {link.provider} provider's package is not installed ({facts.missing_package}). "
                f"Install it: {install_command(provider=link.provider, extras=extras)}",
                "missing_package",
            )
        )
    variable = facts.key_variable or f"the {link.provider} API key variable"
    if facts.key_state == "unset":
        findings.append(
            Finding(
                "error",
                where,
                f"{variable} is not set: {link.provider} needs an API key. Set {variable} in Lukas's environment"
                + ("" if link.where == "llm" else " (or give this provider `api_key: ${SOME_VARIABLE}`)"),
                "api_key",
            )
        )
    elif facts.key_state == "empty":
        findings.append(
            Finding("error", where, f"{variable} is set but empty: {link.provider} needs an API key in it", "api_key")
        )
    if not link.priced:
        findings.append(
            Finding(
                "warning",
                where,
                f"model {link.model!r} has no price: its cost will be shown as unknown (not $0). Add "
                "`price: {input: ..., output: ...}` (US dollars per 1M tokens) or list it under prices: "
                "(0 for a free local model)",
                "price",
            )
        )
    if link.context_window is None:
        findings.append(
            Finding(
                "ok",
                where,
                f"context window not configured; prompts are trimmed to llm.context_budget_tokens "
                f"({context_budget_tokens}) + {max_tokens} reply tokens, which the model must take",
            )
        )
    elif context_budget_tokens + max_tokens > link.context_window:
        findings.append(
            Finding(
                "warning",
                where,
                f"context_window {link.context_window} is smaller than llm.context_budget_tokens + max_tokens "
                f"({context_budget_tokens + max_tokens}): long conversations skip this model",
                "context_window",
            )
        )
    if not any(f.level == "error" for f in findings):
        key = {
            "config": "own api_key",
            "set": f"{facts.key_variable} set",
            "not_needed": "no key needed",
        }.get(facts.key_state, "key not checked")
        window = f"{link.context_window}-token window" if link.context_window else "window not configured"
        findings.insert(0, Finding("ok", where, f"installed, {key}, {window}"))
    return findings


def key_state(
    *, needs_key: bool, key_variable: str | None, provider: str, own_api_key: bool, env: Mapping[str, str]
) -> KeyState:
    """Whether the key a provider needs is there. Only names and emptiness are looked at, never values.

    Lukas hands `<PROVIDER>_API_KEY` to any-llm, which otherwise reads its own variable (`key_variable`)."""
    if not needs_key:
        return "not_needed"
    if own_api_key:
        return "config"
    if not key_variable or " " in key_variable:  # e.g. "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY": not ours
        return "unknown"
    names = [key_variable, f"{provider.upper()}_API_KEY"]
    if any(env.get(name, "").strip() for name in names):
        return "set"
    return "empty" if any(name in env for name in names) else "unset"


def file_check(findings: list[Finding]) -> list[Finding]:
    """`lukas config check` without --env checks the file: a key missing from this machine's environment is a
    warning there (the pre-commit hook and CI have no keys); with --env, and at `lukas run`, it is an error."""
    return [replace(f, level="warning") if f.kind == "api_key" and f.level == "error" else f for f in findings]


def missing_keys(findings: list[Finding]) -> list[str]:
    """What stops `lukas run` in the environment: chat models whose API key is not set."""
    return [f.line() for f in findings if f.kind == "api_key" and f.level == "error"]


def blocks_start(finding: Finding) -> bool:
    """Whether `lukas run` (and a live reload) must refuse the file: a provider that cannot even be built.

    A missing key is not among them: it is an environment matter (`missing_keys`: `lukas run` refuses it as
    such; a reload cannot change the environment, so it is alerted on at the first request)."""
    return finding.kind in {"unknown_provider", "missing_package"}


def needed_extras(*, raw_config: Mapping[str, Any], extras: Iterable[str]) -> list[str]:
    """The pyproject extras a config needs, from the raw YAML tree (install time: no key need be set).

    Follows the chat chain (chat_chain, else every provider, else llm.provider). The weekly image goes
    through the openai SDK, which the base install has, so it adds nothing."""
    names: list[str] = []
    providers = raw_config.get("providers") or {}
    if isinstance(providers, Mapping) and providers:
        chain = raw_config.get("chat_chain") or list(providers)
        for name in chain if isinstance(chain, list) else []:
            entry = providers.get(name)
            if isinstance(entry, Mapping) and isinstance(entry.get("provider"), str):
                names.append(entry["provider"])
    else:
        llm = raw_config.get("llm") or {}
        names.append(llm.get("provider", "openai") if isinstance(llm, Mapping) else "openai")
    wanted: list[str] = []
    for provider in names:
        extra = extra_for(provider=provider, extras=extras)
        if extra is not None and extra not in wanted:
            wanted.append(extra)
    return wanted
