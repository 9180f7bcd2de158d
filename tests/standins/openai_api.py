"""An OpenAI-compatible stand-in on 127.0.0.1: chat completions (plain and streamed) and image generation.

Tests script it: a default reply, a latency, and a queue of faults (status code, error body,
Retry-After, or a hang) consumed one per request.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.standins import serve_on_loopback, stop

# A 1x1 transparent PNG: real image bytes for the image endpoints.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@dataclass
class LLMFault:
    status: int = 500
    code: str | None = None
    message: str = "stand-in fault"
    retry_after: float | None = None
    hang: float | None = None  # sleep this long before answering (to provoke client timeouts)
    body: str | None = None  # raw body instead of a JSON error


@dataclass
class Chaos:
    """Random trouble for soak runs: each chat request draws one outcome."""

    p_500: float = 0.10
    p_429: float = 0.05
    p_timeout: float = 0.02
    retry_after: float = 1.0
    hang_seconds: float = 10.0
    latency: tuple[float, float] = (0.1, 2.0)
    seed: int = 7
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self) -> LLMFault | float:
        """A fault to answer with, or the latency of a good answer."""
        roll = self.rng.random()
        if roll < self.p_500:
            return LLMFault(500)
        if roll < self.p_500 + self.p_429:
            return LLMFault(429, code="rate_limit_exceeded", retry_after=self.retry_after)
        if roll < self.p_500 + self.p_429 + self.p_timeout:
            return LLMFault(200, hang=self.hang_seconds)
        return self.rng.uniform(*self.latency)


@dataclass
class LLMRequest:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class OpenAIStandIn:
    def __init__(self, *, latency: float = 0.0, reply: str = "Hello from the honey pot! 🐻") -> None:
        self.latency = latency
        self.reply: str | Callable[[dict[str, Any]], str] = reply
        self.usage = {"prompt_tokens": 42, "completion_tokens": 17}
        self.faults: list[LLMFault] = []
        self.fault_for: Callable[[dict[str, Any]], LLMFault | None] | None = None  # decide per request body
        self.chaos: Chaos | None = None
        self.image_faults: list[LLMFault] = []
        self.image_mode = "b64"  # or "url"
        self.image_bytes = TINY_PNG
        self.image_content_type = "image/png"
        self.image_usage: dict[str, Any] | None = None  # GPT-image-style `usage` added to image responses
        self.image_latency = 0.0  # seconds before an image answer (a slow generation)
        self.stream_chunk_delay = 0.0
        self.requests: list[LLMRequest] = []
        self.in_flight = 0  # chat requests being answered right now, and the most there ever were at once
        self.peak_in_flight = 0
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[LLMRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def image_requests(self) -> list[LLMRequest]:
        return [r for r in self.requests if r.path.endswith("/images/generations")]

    async def __aenter__(self) -> OpenAIStandIn:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_get("/files/{name}", self._file)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await stop(self._runner)

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(LLMRequest(request.path, body, headers))
        return body

    @staticmethod
    async def _fault_response(fault: LLMFault) -> web.Response:
        if fault.hang:
            await asyncio.sleep(fault.hang)
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if fault.body is not None:
            return web.Response(status=fault.status, text=fault.body, headers=headers)
        error = {
            "message": fault.message,
            "type": "invalid_request_error" if fault.status < 500 else "server_error",
            "code": fault.code,
            "param": None,
        }
        return web.json_response({"error": error}, status=fault.status, headers=headers)

    def _reply_for(self, body: dict[str, Any]) -> str:
        return self.reply(body) if callable(self.reply) else self.reply

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if self.faults:
            return await self._fault_response(self.faults.pop(0))
        chosen = self.fault_for(body) if self.fault_for is not None else None
        if chosen is not None:
            return await self._fault_response(chosen)
        latency = self.latency
        if self.chaos is not None:
            drawn = self.chaos.draw()
            if isinstance(drawn, LLMFault):
                return await self._fault_response(drawn)
            latency = drawn
        if latency:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                await asyncio.sleep(latency)
            finally:
                self.in_flight -= 1
        text = self._reply_for(body)
        completion_id = f"chatcmpl-{next(self._ids)}"
        model = body.get("model", "stand-in")
        if body.get("stream"):
            return await self._stream(request, completion_id, model, text)
        return web.json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                "usage": {**self.usage, "total_tokens": sum(self.usage.values())},
            }
        )

    async def _stream(self, request: web.Request, completion_id: str, model: str, text: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        words = text.split(" ")
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            await self._send_chunk(response, chunk)
        return await self._finish_stream(response, completion_id, model)

    async def _send_chunk(self, response: web.StreamResponse, chunk: dict[str, Any]) -> None:
        """One server-sent event, then the scripted pause between chunks."""
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if self.stream_chunk_delay:
            await asyncio.sleep(self.stream_chunk_delay)

    async def _finish_stream(self, response: web.StreamResponse, completion_id: str, model: str) -> web.StreamResponse:
        """The last chunk (finish reason and usage), then [DONE]."""
        final = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {**self.usage, "total_tokens": sum(self.usage.values())},
        }
        await response.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response

    async def _images(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.image_faults:
            return await self._fault_response(self.image_faults.pop(0))
        if self.image_latency:
            await asyncio.sleep(self.image_latency)
        if self.latency:
            await asyncio.sleep(self.latency)
        item: dict[str, Any] = {"revised_prompt": "revised: " + str(body.get("prompt", ""))[:200]}
        if self.image_mode == "url":
            item["url"] = f"http://127.0.0.1:{self.port}/files/bear.png"
        else:
            item["b64_json"] = base64.b64encode(self.image_bytes).decode()
        payload: dict[str, Any] = {"created": int(time.time()), "data": [item]}
        if self.image_usage is not None:
            payload["usage"] = self.image_usage
        return web.json_response(payload)

    async def _file(self, request: web.Request) -> web.Response:
        self.requests.append(LLMRequest(request.path, {}, dict(request.headers)))
        return web.Response(body=self.image_bytes, content_type=self.image_content_type)
