"""Which failures are worth another attempt, and how long to wait. Pure."""

from __future__ import annotations

import asyncio
import re

from any_llm import exceptions as llm_errors

from bot.config.schema import RetryPolicy

# Outcome names stored in LLMCall.outcome and shown in reports.
OK = "ok"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
AUTH = "auth"
INVALID_REQUEST = "invalid_request"
CONTENT_FILTER = "content_filter"
CONTEXT_LENGTH = "context_length"
MODEL_NOT_FOUND = "model_not_found"  # the provider does not know the configured model: admins must fix config.yml
BREAKER_OPEN = "breaker_open"
THROTTLED = "throttled"  # our own rate limit would have waited longer than rate_limit.max_wait_seconds: not called
INCOMPLETE = "incomplete"  # a streamed reply ended without a finish reason (cut off mid-sentence)
ERROR = "error"

RETRYABLE = frozenset({RATE_LIMITED, SERVER_ERROR, TIMEOUT})

# Provider wordings any-llm's own patterns miss (it maps these to InvalidRequestError). Anthropic: "prompt is too
# long: 208318 tokens > 200000 maximum"; Mistral/vLLM/llama.cpp: "... exceeds the model's context window", ...
_CONTEXT_WORDS = re.compile(
    r"prompt is too long|too many (input )?tokens|exceeds? (the )?(model'?s? )?(context|maximum)|context window",
    re.IGNORECASE,
)
# A 400 that rejects the model name itself ("invalid model ID", "model 'x' does not exist", "unknown model").
_MODEL_WORDS = re.compile(
    r"invalid model|unknown model|model[^.]{0,80}(not found|does not exist|not exist|is not supported|not available)",
    re.IGNORECASE,
)


def classify_error(error: BaseException) -> str:
    """Map any-llm's unified exceptions (and stray library errors) onto our outcome names."""
    if isinstance(error, llm_errors.RateLimitError):
        return RATE_LIMITED
    if isinstance(error, llm_errors.AuthenticationError | llm_errors.MissingApiKeyError):
        return AUTH
    if isinstance(error, llm_errors.ContextLengthExceededError):
        return CONTEXT_LENGTH
    if isinstance(error, llm_errors.ContentFilterError):
        return CONTENT_FILTER
    if isinstance(error, llm_errors.ModelNotFoundError):
        return MODEL_NOT_FOUND
    if isinstance(error, llm_errors.InvalidRequestError):
        if _CONTEXT_WORDS.search(str(error)):
            return CONTEXT_LENGTH
        if _MODEL_WORDS.search(str(error)):
            return MODEL_NOT_FOUND
    if isinstance(
        error,
        llm_errors.InvalidRequestError
        | llm_errors.UnsupportedParameterError
        | llm_errors.UnsupportedProviderError
        | llm_errors.InsufficientFundsError,
    ):
        return INVALID_REQUEST
    if isinstance(error, TimeoutError | asyncio.TimeoutError | llm_errors.GatewayTimeoutError):
        return TIMEOUT
    if isinstance(error, llm_errors.ProviderError | llm_errors.UpstreamProviderError | ConnectionError):
        status = getattr(error, "status_code", None)
        if status is None and "timed out" in str(error).lower():
            return TIMEOUT
        return SERVER_ERROR
    return ERROR


def admin_problem(*, outcome: str, name: str, provider: str, model: str, detail: str) -> tuple[str, str] | None:
    """(alert key, text) when only an admin can fix this failure: credentials, or a model the provider does not
    know. Neither is retried or counted by the breaker; both are told to the admins once per alert interval."""
    if outcome == AUTH:
        return (
            f"llm_auth:{name}",
            f"Lukas cannot log in to {name} ({provider}, model {model}): {detail}. Fix its API key in his environment.",
        )
    if outcome == MODEL_NOT_FOUND:
        return (
            f"llm_model:{name}:{model}",
            f"{name} ({provider}) does not know the model {model!r}: {detail}. Fix the model name in config.yml.",
        )
    return None


def retry_after_seconds(error: BaseException) -> float | None:
    raw = getattr(error, "retry_after", None)
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except (TypeError, ValueError):
        return None


def backoff_seconds(*, attempt: int, policy: RetryPolicy, retry_after: float | None, jitter: float) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to give up now.

    Retry-After wins when the policy respects it; one longer than `max_retry_after_seconds` gives up
    (the user is better served by a fallback line than by a minute of silence). `jitter` is in [0, 1).
    """
    if retry_after is not None and policy.respect_retry_after:
        if retry_after > policy.max_retry_after_seconds:
            return None
        return retry_after
    exponential = policy.multiplier * (2 ** (attempt - 1))
    return min(policy.wait_max_seconds, max(policy.wait_min_seconds, exponential)) + jitter * policy.jitter_seconds
