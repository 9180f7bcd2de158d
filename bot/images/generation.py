"""One image, with the retry policy of config.yml (retry.images) around the API call, then its bytes."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState

from bot.config.images_schema import ImagesConfig
from bot.config.schema import RetryPolicy
from bot.errors import ImageGenerationError
from bot.images.client import Downloaded, RawImage
from bot.images.media_logic import ImageKind, decode_b64, describe_bytes, sniff
from bot.images.retry_logic import classify, wait_before_retry

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class ImageAPI(Protocol):
    async def generate(
        self, *, model: str, prompt: str, size: str, quality: str, timeout: float | None = None
    ) -> RawImage: ...

    async def download(self, url: str, *, timeout: float, max_bytes: int) -> Downloaded: ...


@dataclass(frozen=True)
class ImageBytes:
    data: bytes
    kind: ImageKind
    revised_prompt: str | None
    usage: dict[str, Any] | None
    attempts: int
    source: str  # "b64" or "url"


async def request_image(
    client: ImageAPI,
    *,
    model: str,
    prompt: str,
    size: str,
    quality: str,
    timeout: float,
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> tuple[RawImage, int]:
    """Call the image API under `policy`: only rate limits, connection errors/timeouts and 5xx are retried,
    Retry-After is honoured up to policy.max_retry_after_seconds. Returns (image, attempts made).
    Raises ImageGenerationError with the reason, the attempt count, its kind and whether admins must act."""
    rng = rng or random.Random()
    attempts = 0

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        failure = classify(exc) if exc else None
        jitter = rng.uniform(0, policy.jitter_seconds) if policy.jitter_seconds else 0.0
        if failure is None:
            return 0.0
        return wait_before_retry(policy=policy, attempt=state.attempt_number, failure=failure, jitter=jitter) or 0.0

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "image request attempt %d of %d failed (%s); retrying in %.1fs",
            state.attempt_number,
            policy.attempts,
            classify(exc).reason if exc else "?",
            seconds,
        )

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.attempts:
            return True
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return True
        failure = classify(exc)
        return wait_before_retry(policy=policy, attempt=state.attempt_number, failure=failure) is None

    def retryable(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return exc is not None and classify(exc).retryable

    retrying = AsyncRetrying(
        stop=stop, wait=wait, retry=retryable, sleep=sleep, before_sleep=before_sleep, reraise=True
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                raw = await client.generate(model=model, prompt=prompt, size=size, quality=quality, timeout=timeout)
        return raw, attempts
    except Exception as exc:
        failure = classify(exc)
        reason = failure.reason
        if failure.retryable:
            if (
                policy.respect_retry_after
                and failure.retry_after is not None
                and failure.retry_after > policy.max_retry_after_seconds
            ):
                reason += (
                    f" (the API asked to wait {failure.retry_after:g}s, longer than "
                    f"retry.images.max_retry_after_seconds={policy.max_retry_after_seconds:g})"
                )
            reason += f"; gave up after {attempts} attempt(s)"
        raise ImageGenerationError(reason, attempts=attempts, kind=failure.kind, alert=failure.alert) from None


async def image_bytes(
    client: ImageAPI, *, raw: RawImage, config: ImagesConfig, sleep: Sleep = asyncio.sleep
) -> tuple[bytes, ImageKind, str]:
    """The bytes of a generated image, checked to be a real image. Base64 is decoded; a URL is downloaded
    (one more try on a network error: the image is already paid for). Raises ImageGenerationError(paid=True)."""
    if raw.b64_json:
        try:
            data = decode_b64(raw.b64_json)
        except ValueError as exc:
            raise ImageGenerationError(str(exc), kind="bad_response", paid=True) from None
        source = "b64"
    else:
        assert raw.url is not None
        downloaded: Downloaded | None = None
        for attempt in (1, 2):
            try:
                downloaded = await client.download(
                    raw.url, timeout=config.download_timeout_seconds, max_bytes=config.download_max_bytes
                )
                break
            except ImageGenerationError as exc:
                if exc.kind != "download_transient" or attempt == 2:
                    raise ImageGenerationError(str(exc), kind="download", paid=True) from None
                log.warning("image download failed (%s); trying once more", exc)
                await sleep(1.0)
        assert downloaded is not None
        data = downloaded.data
        source = "url"
    kind = sniff(data)
    if kind is None:
        raise ImageGenerationError(
            f"the image API sent something that is not a PNG, JPEG, GIF or WebP image ({describe_bytes(data)})",
            kind="bad_response",
            paid=True,
        )
    return data, kind, source
