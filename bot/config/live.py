"""The config in force. Readers call `.current` each time, so a reload applies to the next message or job."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from bot.config.loader import load_config
from bot.config.schema import LukasConfig

log = logging.getLogger(__name__)

Listener = Callable[[LukasConfig, LukasConfig], None]


class LiveConfig:
    def __init__(self, config: LukasConfig, *, path: str | Path | None = None) -> None:
        self._config = config
        self.path = Path(path) if path is not None else None
        self.version = 1
        self._listeners: list[Listener] = []

    @property
    def current(self) -> LukasConfig:
        return self._config

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    def on_change(self, listener: Listener) -> None:
        """`listener(old, new)` runs after every applied change."""
        self._listeners.append(listener)

    def apply(self, config: LukasConfig) -> None:
        old, self._config = self._config, config
        self.version += 1
        for listener in self._listeners:
            try:
                listener(old, config)
            except Exception:
                log.exception("a config change listener failed; the new config stays in force")

    def reload(self) -> LukasConfig:
        """Re-read the file; raises ConfigError (and keeps the current config) when it is invalid."""
        config = load_config(self.path)
        if config != self._config:
            self.apply(config)
        return config
