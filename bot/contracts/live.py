"""The contract engine for the config in force, shared by chat, the weekly picture and the admin commands."""

from __future__ import annotations

from bot.config.live import LiveConfig
from bot.config.schema import LukasConfig
from bot.contracts.engine import ContractEngine


class ContractsHolder:
    """The contract engine for the config in force; rebuilt when config.yml changes.

    The new engine is built while the reload is validated (LiveConfig.add_check), so a bad banned-terms
    file refuses the reload instead of leaving the old engine behind a new config."""

    def __init__(self, config: LiveConfig) -> None:
        self._build = lambda c: ContractEngine.from_config(c.contracts, base_dir=config.base_dir)
        self._engine = self._build(config.current)
        self._staged: tuple[LukasConfig, ContractEngine] | None = None
        config.add_check(self._stage)
        config.on_change(lambda _old, new: self._rebuild(new))

    def _stage(self, config: LukasConfig) -> None:
        self._staged = (config, self._build(config))  # raises ConfigError for a bad banned-terms file

    def _rebuild(self, config: LukasConfig) -> None:
        staged, self._staged = self._staged, None
        self._engine = staged[1] if staged is not None and staged[0] is config else self._build(config)

    def __call__(self) -> ContractEngine:
        return self._engine
