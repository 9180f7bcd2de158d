"""The Slack Web API client: base URL override, and slack-sdk's own retry handlers for rate limits.

Non-idempotent calls (a post creates a message each time) are never retried blindly after an unknown outcome
(a timeout, a dropped connection, a 5xx): the caller looks for its own reply first (bot.slack.replies). A
`ratelimited` answer means nothing was posted, so it is retried after Retry-After — capped: a longer wait is
given up on instead of holding an answer (and its lease) for minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

DEFAULT_API_URL = "https://slack.com/api/"
# Calls that create something each time they succeed: retried only when Slack said for sure it did nothing.
NON_IDEMPOTENT = ("chat.postMessage", "chat.startStream", "files.completeUploadExternal")
DEFAULT_MAX_RETRY_AFTER = 30.0


def _non_idempotent(request: Any) -> bool:
    url = str(getattr(request, "url", ""))
    return any(url.endswith(method) or f"{method}?" in url for method in NON_IDEMPOTENT)


class _IdempotentConnectionRetry(AsyncConnectionErrorRetryHandler):
    async def _can_retry_async(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        if _non_idempotent(request):
            return False
        return await super()._can_retry_async(state=state, request=request, response=response, error=error)


class _IdempotentServerErrorRetry(AsyncServerErrorRetryHandler):
    async def _can_retry_async(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        if _non_idempotent(request):
            return False
        return await super()._can_retry_async(state=state, request=request, response=response, error=error)


def retry_after_of(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return float(raw)
            except (TypeError, ValueError):
                return None
    return None


class CappedRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """Waits Slack's Retry-After, unless it is longer than the cap: then the `ratelimited` error surfaces."""

    def __init__(self, *, max_retry_count: int, cap: Callable[[], float]) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._cap = cap

    async def _can_retry_async(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        if not await super()._can_retry_async(state=state, request=request, response=response, error=error):
            return False
        wait = retry_after_of(response)
        return wait is None or wait <= self._cap()


def build_web_client(
    *,
    token: str | None,
    api_url: str | None = None,
    timeout: int = 30,
    max_retry_after: Callable[[], float] = lambda: DEFAULT_MAX_RETRY_AFTER,
) -> AsyncWebClient:
    """Retries `ratelimited` after Slack's Retry-After (capped), plus connection and 5xx errors of idempotent calls."""
    base_url = api_url or DEFAULT_API_URL
    if not base_url.endswith("/"):
        base_url += "/"
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            _IdempotentConnectionRetry(max_retry_count=2),
            CappedRateLimitRetry(max_retry_count=4, cap=max_retry_after),
            _IdempotentServerErrorRetry(max_retry_count=2),
        ],
    )


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code (e.g. `channel_not_found`), even when the body was not JSON."""
    response = exc.response
    data = getattr(response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    status = getattr(response, "status_code", None)
    return f"HTTP {status}" if status else "unknown error"
