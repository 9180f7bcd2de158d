"""The config in force. Readers call `.current` each time, so a reload applies to the next message or job.

A reload is all or nothing: the new file is parsed, validated, then run through the registered checks (e.g.
building the contract engine, which reads the banned-terms file). Only when everything passes is it applied;
otherwise ConfigError is raised and the last good config stays in force.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from bot.config.loader import default_config_path, parse_config
from bot.config.schema import LukasConfig
from bot.errors import ConfigError

log = logging.getLogger(__name__)

Listener = Callable[[LukasConfig, LukasConfig], None]
Check = Callable[[LukasConfig], None]


class LiveConfig:
    def __init__(self, config: LukasConfig, *, path: str | Path | None = None) -> None:
        self._config = config
        self.path = Path(path) if path is not None else None
        self.version = 1
        self._listeners: list[Listener] = []
        self._checks: list[Check] = []

    @property
    def current(self) -> LukasConfig:
        return self._config

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    @property
    def file(self) -> Path:
        return self.path if self.path is not None else default_config_path()

    def on_change(self, listener: Listener) -> None:
        """`listener(old, new)` runs after every applied change."""
        self._listeners.append(listener)

    def add_check(self, check: Check) -> None:
        """`check(new)` runs before a reload is applied; raising (ConfigError, ideally) refuses the reload."""
        self._checks.append(check)

    def validate(self, config: LukasConfig) -> None:
        """Run the registered checks. Raises ConfigError naming every problem found."""
        problems: list[str] = []
        for check in self._checks:
            try:
                check(config)
            except ConfigError as error:
                problems += error.problems
            except Exception as exc:  # a check must refuse, never crash the reload
                problems.append(f"(check) {type(exc).__name__}: {exc}")
        if problems:
            raise ConfigError(problems, path=str(self.file))

    def apply(self, config: LukasConfig) -> None:
        old, self._config = self._config, config
        self.version += 1
        for listener in self._listeners:
            try:
                listener(old, config)
            except Exception:
                log.exception("a config change listener failed; the new config stays in force")

    def read_text(self) -> str:
        """The file's text; ConfigError (as `lukas config check` words it) when missing or unreadable."""
        path = self.file
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(["file not found (set LUKAS_CONFIG or pass the path)"], path=str(path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"cannot read the file: {exc}"], path=str(path)) from None

    def reload_text(self, text: str, *, force: bool = False) -> LukasConfig:
        """Parse, validate and apply `text`; raises ConfigError (keeping the current config) when it is invalid.

        An unchanged config is not applied again unless `force` (which also re-reads files the config names)."""
        config = parse_config(text, source=str(self.file))
        if force or config != self._config:
            self.validate(config)
            self.apply(config)
        return config

    def reload(self, *, force: bool = False) -> LukasConfig:
        """Re-read the file; raises ConfigError (and keeps the current config) when it is invalid."""
        return self.reload_text(self.read_text(), force=force)
