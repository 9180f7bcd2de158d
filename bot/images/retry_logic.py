"""How an image API failure is handled: retried or not, which status it records, whether admins hear of it.

Seed 002: two attempts, exponential 4-60 s, only for rate limits, connection errors and 5xx. Content-policy
refusals are never retried; an authentication failure alerts the admins. Pure (it reads exception fields).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import openai

from bot.config.schema import RetryPolicy
from bot.errors import ImageGenerationError

CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})


@dataclass(frozen=True)
class Failure:
    kind: str  # rate_limit | server | timeout | connection | content_policy | auth | quota | model | bad_request
    #            | bad_response | error
    retryable: bool
    reason: str
    alert: bool = False
    retry_after: float | None = None


def short(text: object, limit: int = 300) -> str:
    """One line, cut to `limit`: exception texts go into log lines and a row's error column."""
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms`, `retry-after` (seconds or an HTTP date); None when absent or unreadable."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = lowered.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / divisor
        except ValueError:
            continue
        if value >= 0:
            return value
    raw = lowered.get("retry-after")
    if raw:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is not None:
            return max(0.0, email.utils.mktime_tz(parsed) - (time.time() if now is None else now))
    return None


def _headers(exc: openai.APIStatusError) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def _api_message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, Mapping) and body.get("message"):
        return short(body["message"])
    return short(exc.message)


def classify(exc: BaseException) -> Failure:
    """Sort any exception from one image request into a Failure."""
    if isinstance(exc, ImageGenerationError):
        kind = getattr(exc, "kind", "error")
        return Failure(kind, False, str(exc), alert=getattr(exc, "alert", False))
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", True, "the image API did not answer in time (images.request_timeout_seconds)")
    if isinstance(exc, openai.APIConnectionError):
        return Failure("connection", True, f"cannot reach the image API: {short(exc.__cause__ or exc.message)}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = (exc.code or "").lower()
        message = _api_message(exc)
        if code in CONTENT_POLICY_CODES:
            return Failure("content_policy", False, f"refused by the image API's content policy ({code}): {message}")
        if status == 429 and code in QUOTA_CODES:
            return Failure("quota", False, f"the image API account is out of credit ({code}): {message}", alert=True)
        if status == 429:
            retry_after = parse_retry_after(_headers(exc))
            return Failure("rate_limit", True, f"rate limited by the image API: {message}", retry_after=retry_after)
        if status >= 500:
            retry_after = parse_retry_after(_headers(exc))
            return Failure("server", True, f"the image API failed (HTTP {status}): {message}", retry_after=retry_after)
        if status in (401, 403):
            return Failure(
                "auth",
                False,
                f"the image API refused the credentials (HTTP {status}): {message}. Check OPENAI_API_KEY "
                "(and OPENAI_BASE_URL)",
                alert=True,
            )
        if status == 404 or "model" in code:
            reason = f"the image API does not offer this model (HTTP {status}): {message}. Check images.model"
            return Failure("model", False, reason, alert=True)
        return Failure(
            "bad_request",
            False,
            f"the image API rejected the request (HTTP {status}): {message}. Check images.model, size and quality",
            alert=True,
        )
    if isinstance(exc, openai.APIResponseValidationError | openai.APIError):
        return Failure("bad_response", False, f"the image API sent an unreadable answer: {short(exc)}")
    return Failure("error", False, f"image request failed: {type(exc).__name__}: {short(exc)}")


def exponential_wait(*, policy: RetryPolicy, attempt: int, jitter: float = 0.0) -> float:
    """Wait after failed attempt number `attempt` (1-based): multiplier * 2^(attempt-1), clamped to
    [wait_min, wait_max], plus `jitter` (a number in [0, policy.jitter_seconds] chosen by the caller)."""
    base = policy.multiplier * (2 ** (attempt - 1))
    return max(policy.wait_min_seconds, min(policy.wait_max_seconds, base)) + jitter


def wait_before_retry(*, policy: RetryPolicy, attempt: int, failure: Failure, jitter: float = 0.0) -> float | None:
    """Seconds to wait before the next attempt, or None when the server's Retry-After is beyond the allowed wait."""
    if policy.respect_retry_after and failure.retry_after is not None:
        if failure.retry_after > policy.max_retry_after_seconds:
            return None
        return failure.retry_after
    return exponential_wait(policy=policy, attempt=attempt, jitter=jitter)


def usage_dict(usage: Any) -> dict[str, Any] | None:
    """The `usage` of an ImagesResponse as a plain dict (it may be a pydantic model, a dict, or absent)."""
    if usage is None:
        return None
    if isinstance(usage, Mapping):
        return dict(usage)
    dump = getattr(usage, "model_dump", None)
    if callable(dump):
        try:
            result = dump()
        except Exception:
            return None
        return result if isinstance(result, dict) else None
    return None
