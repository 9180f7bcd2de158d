"""The one exception hierarchy for Lukas's own errors.

Library errors (any-llm, openai, slack-sdk, SQLAlchemy) are caught at the edges and either handled or
wrapped in one of these, so callers only ever need to know this file.
"""

from __future__ import annotations


class LukasError(Exception):
    """Base of every error Lukas raises on purpose."""


class ConfigError(LukasError):
    """config.yml is missing, unreadable or invalid. `problems` holds one line per field."""

    def __init__(self, problems: list[str], *, path: str | None = None) -> None:
        self.problems = problems
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(problems))


class StartupError(LukasError):
    """Lukas cannot start (missing tokens, unreachable database); the message says how to fix it."""


class DatabaseUnavailableError(LukasError):
    """The database could not be reached or migrated."""


class BackupError(LukasError):
    """`lukas backup` / `lukas restore` cannot go on (not a backup, a non-empty target, ...); the message says why."""


class BreakerOpen(LukasError):
    """The model was not called (breaker open, or a trial already running), or this failure tripped it.

    `tripped_by` is the failure that opened the breaker, when this very call did.
    """

    def __init__(self, message: str, *, tripped_by: BaseException | None = None) -> None:
        super().__init__(message)
        self.tripped_by = tripped_by


class IncompleteStream(LukasError):
    """A streamed reply ended without a finish reason: it was cut off."""


class ImageGenerationError(LukasError):
    """The image API failed; `status` is the GeneratedImage status to record.

    `kind` names the failure (rate_limit, content_policy, auth, download, ...), `alert` says the admins must act,
    and `paid` that the image was generated (and billed) but could not be fetched.
    """

    def __init__(
        self,
        message: str,
        *,
        status: str = "failed",
        attempts: int = 0,
        kind: str = "error",
        alert: bool = False,
        paid: bool = False,
    ) -> None:
        self.status = status
        self.attempts = attempts
        self.kind = kind
        self.alert = alert
        self.paid = paid
        super().__init__(message)


class SlackDeliveryError(LukasError):
    """Slack refused or failed a call after our own retries."""


class PartlyDelivered(SlackDeliveryError):
    """Slack took the first parts of a long reply, then refused the next one: `timestamps` and `text` are what
    it holds."""

    def __init__(self, message: str, *, timestamps: list[str], text: str) -> None:
        super().__init__(message)
        self.timestamps = timestamps
        self.text = text


class LeaseLost(LukasError):
    """This Lukas no longer holds the lease on an answer (another replica took it over): stop without posting."""
