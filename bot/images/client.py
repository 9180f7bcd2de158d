"""The image API edge: a thin wrapper over openai.AsyncOpenAI (SDK retries off) plus a careful URL download.

Create it inside the event loop that uses it (one client per loop, like every SDK client here).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai

from bot.errors import ImageGenerationError
from bot.images.retry_logic import usage_dict

DOWNLOAD_CHUNK = 64 * 1024


@dataclass(frozen=True)
class RawImage:
    """The first image of a generation response: base64 (GPT image models) or a URL (DALL-E-style servers)."""

    b64_json: str | None
    url: str | None
    revised_prompt: str | None
    usage: dict[str, Any] | None


@dataclass(frozen=True)
class Downloaded:
    data: bytes
    content_type: str


def _download_error(message: str, *, transient: bool) -> ImageGenerationError:
    return ImageGenerationError(message, kind="download_transient" if transient else "download", paid=True)


class ImageClient:
    def __init__(self, *, api_key: str | None, base_url: str | None = None, timeout: float = 120.0) -> None:
        self._api_key = api_key
        self._base_url = base_url or None
        self._timeout = timeout
        self._openai: openai.AsyncOpenAI | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, timeout: float = 120.0) -> ImageClient:
        """From bot.settings.Settings: OPENAI_API_KEY and OPENAI_BASE_URL."""
        return cls(api_key=settings.openai_api_key, base_url=settings.openai_base_url, timeout=timeout)

    def _sdk(self) -> openai.AsyncOpenAI:
        if self._openai is None:
            key = self._api_key
            if not key:
                if self._base_url is None:
                    raise ImageGenerationError(
                        "OPENAI_API_KEY is not set, so no image can be generated; set it in the environment",
                        kind="auth",
                        alert=True,
                    )
                key = "not-needed"  # a compatible server on OPENAI_BASE_URL that takes no key
            self._openai = openai.AsyncOpenAI(
                api_key=key, base_url=self._base_url, timeout=self._timeout, max_retries=0
            )
        return self._openai

    async def generate(
        self, *, model: str, prompt: str, size: str, quality: str, timeout: float | None = None
    ) -> RawImage:
        """One request (no retries here). Raises openai errors, or ImageGenerationError for unusable answers."""
        response = await self._sdk().images.generate(  # type: ignore[call-overload]  # size, quality: plain str
            model=model,
            prompt=prompt,
            n=1,
            size=size,
            quality=quality,
            timeout=timeout if timeout is not None else self._timeout,
        )
        if isinstance(response, str | bytes):
            shown = response[:80] if isinstance(response, str) else response[:80].decode("utf-8", "replace")
            raise ImageGenerationError(
                f"the image API answered with something that is not JSON: {' '.join(shown.split())!r}",
                kind="bad_response",
            )
        data = getattr(response, "data", None)
        if not isinstance(data, list) or not data:
            raise ImageGenerationError("the image API answered without an image", kind="bad_response")
        first = data[0]
        b64_json = getattr(first, "b64_json", None)
        url = getattr(first, "url", None)
        if not b64_json and not url:
            raise ImageGenerationError("the image API answered with neither b64_json nor url", kind="bad_response")
        return RawImage(
            b64_json=b64_json if isinstance(b64_json, str) else None,
            url=url if isinstance(url, str) else None,
            revised_prompt=getattr(first, "revised_prompt", None),
            usage=usage_dict(getattr(response, "usage", None)),
        )

    async def download(self, url: str, *, timeout: float, max_bytes: int) -> Downloaded:
        """GET an image URL: http(s) only, a total time limit, a size cap (checked while reading) and an image
        content type. Raises ImageGenerationError(kind="download" or "download_transient", paid=True)."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise _download_error(f"the image URL is not http(s): {url[:80]!r}", transient=False)
        try:
            async with asyncio.timeout(timeout):
                return await self._fetch(url, timeout=timeout, max_bytes=max_bytes)
        except TimeoutError:
            raise _download_error(
                f"downloading the image took longer than {timeout:g}s (images.download_timeout_seconds)",
                transient=True,
            ) from None
        except httpx.HTTPError as exc:
            raise _download_error(
                f"cannot download the image: {type(exc).__name__}: {str(exc)[:200]}", transient=True
            ) from None

    async def _fetch(self, url: str, *, timeout: float, max_bytes: int) -> Downloaded:
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=True, max_redirects=3) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise _download_error(
                    f"the image URL answered HTTP {response.status_code}", transient=response.status_code >= 500
                )
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not content_type.startswith("image/"):
                raise _download_error(
                    f"the image URL sent {content_type or 'no content type'}, not an image", transient=False
                )
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _download_error(
                    f"the image is {int(declared)} bytes, over images.download_max_bytes ({max_bytes})",
                    transient=False,
                )
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise _download_error(
                        f"the image is over images.download_max_bytes ({max_bytes} bytes); download stopped",
                        transient=False,
                    )
                chunks.append(chunk)
            return Downloaded(b"".join(chunks), content_type)

    async def aclose(self) -> None:
        if self._openai is not None:
            await self._openai.close()
            self._openai = None
