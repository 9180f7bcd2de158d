"""Read config.yml into a LukasConfig, turning every admin mistake into a line that names the field."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from bot.config.providers_schema import summary_lines
from bot.config.schema import LukasConfig
from bot.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_WORDS = ("key", "token", "secret", "password")


def default_config_path() -> Path:
    return Path(os.environ.get("LUKAS_CONFIG", "config.yml"))


def substitute_env(value: Any, *, env: Mapping[str, str], path: str = "") -> tuple[Any, list[str]]:
    """Replace ${VAR} and ${VAR:-default} in every string; return the new tree and the problems."""
    problems: list[str] = []
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match[1], match[2]
            if default is not None:  # as in the shell: the default also replaces a variable that is set but empty
                return env.get(name) or default
            if name in env:
                return env[name]
            problems.append(
                f"{path or '(top)'}: environment variable {name} is not set "
                f"(set it, or write ${{{name}:-default}} to give a default)"
            )
            return ""

        return _ENV_REF.sub(replace, value), problems
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key], sub = substitute_env(item, env=env, path=f"{path}.{key}" if path else str(key))
            problems += sub
        return out, problems
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            new, sub = substitute_env(item, env=env, path=f"{path}[{index}]")
            items.append(new)
            problems += sub
        return items, problems
    return value, problems


def _dotted(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key that failed validation
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"


def _inner_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside an annotation (X, list[X], X | None, dict[str, X]) and whether it is a dict value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    is_dict = get_origin(annotation) is dict
    for arg in get_args(annotation):
        model, _ = _inner_model(arg)
        if model is not None:
            return model, is_dict
    return None, False


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of loc, to suggest the setting the admin meant."""
    model: type[BaseModel] | None = LukasConfig
    skip_key = False
    for part in loc[:-1]:
        if isinstance(part, int) or skip_key or model is None:
            skip_key = False
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model, skip_key = _inner_model(field.annotation)
    return model


def format_validation_error(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        where = _dotted(loc)
        if item["type"] == "extra_forbidden":
            hint = ""
            owner = _model_at(loc)
            if owner is not None and loc and isinstance(loc[-1], str):
                known = [f.alias or name for name, f in owner.model_fields.items()]
                close = difflib.get_close_matches(loc[-1], known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (known settings: {', '.join(known)})"
            problems.append(f"{where}: unknown setting{hint}")
        elif item["type"] == "missing":
            problems.append(f"{where}: required setting is missing")
        else:
            message = item["msg"].removeprefix("Value error, ")
            given = item.get("input")
            repeated = str(given) in message or (isinstance(given, str) and where.endswith(f".{given}"))
            shown = f" (got {given!r})" if isinstance(given, str | int | float) and not repeated else ""
            problems.append(f"{where}: {message}{shown}")
    return problems


def parse_config(text: str, *, env: Mapping[str, str] | None = None, source: str = "config.yml") -> LukasConfig:
    """Parse YAML text. Raises ConfigError listing every problem found."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}not valid YAML: {problem}"], path=source) from None
    if raw is None:
        raise ConfigError(["the file is empty"], path=source)
    if not isinstance(raw, dict):
        raise ConfigError(["the top level must be a mapping of sections (persona:, llm:, ...)"], path=source)
    substituted, problems = substitute_env(raw, env=os.environ if env is None else env)
    if problems:
        raise ConfigError(problems, path=source)
    try:
        return LukasConfig.model_validate(substituted)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc), path=source) from None


def load_config(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None) -> LukasConfig:
    config_path = Path(path) if path is not None else default_config_path()
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(["file not found (set LUKAS_CONFIG or pass the path)"], path=str(config_path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read the file: {exc}"], path=str(config_path)) from None
    return parse_config(text, env=env, source=str(config_path))


def read_raw_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML tree with ${VAR} filled in where set (blank where not), unvalidated: for install-time questions
    such as which provider SDKs to install, asked before any key exists. Raises ConfigError when unreadable."""
    config_path = Path(path)
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(["file not found (set LUKAS_CONFIG or pass the path)"], path=str(config_path)) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"cannot read the file: {exc}"], path=str(config_path)) from None
    if not isinstance(raw, dict):
        return {}
    substituted, _unset_variables_are_blank = substitute_env(raw, env=os.environ)
    return substituted


def is_secret_name(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def summarize(config: LukasConfig) -> list[str]:
    """A short, secret-free summary for `lukas config check`."""
    from bot.chat.channels_logic import summary_lines as channel_summary_lines  # chat imports config: not at the top

    images = config.images
    contracts = config.contracts
    return [
        f"persona: {config.persona.name} ({len(config.persona.system_prompt)} characters of system prompt)",
        f"llm: {config.llm.provider}:{config.llm.model}, max_tokens {config.llm.max_tokens}, "
        f"budget {config.llm.context_budget_tokens} tokens, history {config.llm.history_size} messages"
        + (" (custom api_base)" if config.llm.api_base else ""),
        f"retry: chat {config.retry.chat.attempts} attempts, images {config.retry.images.attempts} attempts",
        f"breaker: opens after {config.breaker.fail_max} failures, resets after {config.breaker.reset_seconds:g}s",
        f"fallbacks: {len(config.fallbacks.lines)} lines, {len(config.fallbacks.refusal_lines)} refusal lines",
        f"images: {'on' if images.enabled else 'off'}, cron '{images.schedule.cron}' "
        f"({images.schedule.timezone}), {len(images.channels)} channel(s), {images.model} {images.size} "
        f"{images.quality}, budget ${images.monthly_budget_usd:.2f}/month",
        f"contracts: {len(contracts.chat_input)} chat input, {len(contracts.chat_output)} reply, "
        f"{len(contracts.image_prompt)} image prompt; {len(contracts.banned_terms)} banned terms"
        + (" + file" if contracts.banned_terms_file else ""),
        f"admins: {len(config.admins)}; priced models: {', '.join(sorted(config.prices)) or 'none'}",
        *summary_lines(config),
        *channel_summary_lines(config),
    ]
