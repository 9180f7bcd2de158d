"""The config watcher: polls config.yml, applies valid edits, refuses bad ones (logged, admins DMed once).

No file-system events (no extra dependency, works on network and container mounts): the file is read and
hashed every `reload.poll_seconds`. A change is acted on once it has been stable for one short settle
interval, so an editor's half-written save is simply retried at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.admin import reload_logic
from bot.admin.reload_logic import APPLIED, REFUSED, UNCHANGED, ReloadOutcome
from bot.config.live import LiveConfig
from bot.errors import ConfigError

log = logging.getLogger(__name__)

AlertAdmins = Callable[..., Awaitable[bool]]
SETTLE_SECONDS = 0.25


class ConfigWatcher:
    def __init__(
        self, config: LiveConfig, *, alert: AlertAdmins | None = None, settle_seconds: float = SETTLE_SECONDS
    ) -> None:
        self._config = config
        self._alert = alert
        self._settle = settle_seconds
        self._processed: str | None = None
        self._pending: str | None = None
        self._episode = 0  # bumped by every good reload: an error that comes back is DMed again
        self.last_outcome: ReloadOutcome | None = None
        self.outcomes = 0  # reload attempts acted on (automatic and forced)

    def prime(self) -> None:
        """Remember the file as it is now (what the process started with), so it is not reloaded at once."""
        self._processed = self._read()[0]

    def _read(self) -> tuple[str, str | None, ConfigError | None]:
        try:
            text = self._config.read_text()
        except ConfigError as error:
            return reload_logic.fingerprint(None, error="; ".join(error.problems)), None, error
        return reload_logic.fingerprint(text.encode()), text, None

    async def poll_once(self) -> ReloadOutcome | None:
        """One poll: None when nothing new (or the change is still settling), else what happened."""
        seen, text, error = self._read()
        process, self._pending = reload_logic.should_process(
            seen=seen, processed=self._processed, pending=self._pending
        )
        if not process:
            return None
        self._processed = seen
        outcome = self._attempt(text, error, force=False)
        await self.report(outcome, automatic=True)
        return outcome

    def reload_now(self) -> ReloadOutcome:
        """`/lukas reload`: read and apply right away (re-applied even if unchanged). Call `report` afterwards."""
        seen, text, error = self._read()
        self._processed, self._pending = seen, None
        return self._attempt(text, error, force=True)

    def _attempt(self, text: str | None, error: ConfigError | None, *, force: bool) -> ReloadOutcome:
        path = str(self._config.file)
        old = self._config.current
        try:
            if error is not None:
                raise error
            assert text is not None
            new = self._config.reload_text(text, force=force)
        except ConfigError as exc:
            outcome = ReloadOutcome(REFUSED, exc.path or path, problems=list(exc.problems))
        except Exception as exc:  # never let a surprise kill the watcher; refuse like any bad edit
            log.exception("config reload failed unexpectedly")
            outcome = ReloadOutcome(REFUSED, path, problems=[f"unexpected error: {type(exc).__name__}: {exc}"])
        else:
            changed = reload_logic.changed_sections(old, new)
            outcome = ReloadOutcome(APPLIED if changed else UNCHANGED, path, changed=changed)
            self._episode += 1
        self.last_outcome = outcome
        self.outcomes += 1
        return outcome

    async def report(self, outcome: ReloadOutcome, *, automatic: bool) -> None:
        """Log the outcome; DM the admins about a refusal (once per distinct error)."""
        how = "config.yml edit" if automatic else "/lukas reload"
        if outcome.status != REFUSED:
            if outcome.status == APPLIED or not automatic:
                log.info("%s: %s", how, reload_logic.outcome_text(outcome))
            return
        log.error(
            "%s refused: %s has %d problem(s); the last good config stays in force",
            how,
            outcome.path,
            len(outcome.problems),
        )
        for problem in outcome.problems:
            log.error("config error in %s: %s", outcome.path, problem)
        if self._alert is None:
            return
        key = reload_logic.alert_key(path=outcome.path, problems=outcome.problems, episode=self._episode)
        try:
            await self._alert(
                "config", reload_logic.admin_alert_text(path=outcome.path, problems=outcome.problems), once_key=key
            )
        except Exception:
            log.exception("could not tell the admins about the refused config")

    async def run(self) -> None:
        """The background task (started by Lukas.start, cancelled by Lukas.stop)."""
        if self._processed is None:
            self.prime()
        while True:
            settings = self._config.current.reload
            try:
                if settings.watch:
                    await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("config watcher poll failed; trying again")
            await asyncio.sleep(self._settle if self._pending is not None else settings.poll_seconds)
