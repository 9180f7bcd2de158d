"""Anthropic's Messages API on 127.0.0.1, in its own wire format: `POST /v1/messages`, plain and streamed.

Streams are server-sent events as Anthropic sends them: message_start, content_block_start, ping,
content_block_delta (text_delta) ..., content_block_stop, message_delta (stop_reason, usage), message_stop.
Errors are Anthropic's envelope `{"type": "error", "error": {"type": ..., "message": ...}}` with its statuses:
429 rate_limit_error (+ retry-after), 529 overloaded_error, 400 invalid_request_error ("prompt is too long"),
404 not_found_error (an unknown model), 401 authentication_error.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.standins import serve_on_loopback, stop
from tests.standins.openai_api import LLMRequest

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class AnthropicFault:
    status: int = 529
    message: str = "Overloaded"
    retry_after: float | None = None
    hang: float | None = None


def rate_limited(retry_after: float = 1.0) -> AnthropicFault:
    return AnthropicFault(429, "Number of request tokens has exceeded your per-minute rate limit", retry_after)


def overloaded() -> AnthropicFault:
    return AnthropicFault(529, "Overloaded")


def prompt_too_long() -> AnthropicFault:
    return AnthropicFault(400, "prompt is too long: 208318 tokens > 200000 maximum")


def unknown_model(model: str) -> AnthropicFault:
    return AnthropicFault(404, f"model: {model}")


class AnthropicStandIn:
    def __init__(self, *, reply: str = "Hello from the Anthropic den! 🐻", latency: float = 0.0) -> None:
        self.reply = reply
        self.latency = latency
        self.usage = {"input_tokens": 31, "output_tokens": 12}
        self.faults: list[AnthropicFault] = []
        self.requests: list[LLMRequest] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """What `api_base` is set to: the SDK appends /v1/messages."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> AnthropicStandIn:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await stop(self._runner)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(LLMRequest(request.path, body, {k.lower(): v for k, v in request.headers.items()}))
        if self.faults:
            return await self._error(self.faults.pop(0))
        if self.latency:
            await asyncio.sleep(self.latency)
        message_id = f"msg_{next(self._ids):04d}"
        model = body.get("model", "claude-stand-in")
        if body.get("stream"):
            return await self._stream(request, message_id, model)
        return web.json_response(
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": self.reply}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": dict(self.usage),
            },
            headers={"request-id": f"req_{message_id}"},
        )

    @staticmethod
    async def _error(fault: AnthropicFault) -> web.Response:
        if fault.hang:
            await asyncio.sleep(fault.hang)
        headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        error = {"type": ERROR_TYPES.get(fault.status, "api_error"), "message": fault.message}
        return web.json_response({"type": "error", "error": error}, status=fault.status, headers=headers)

    async def _stream(self, request: web.Request, message_id: str, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def event(name: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

        start = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.usage["input_tokens"], "output_tokens": 1},
        }
        await event("message_start", {"type": "message_start", "message": start})
        block = {"type": "text", "text": ""}
        await event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
        await event("ping", {"type": "ping"})
        for index, word in enumerate(self.reply.split(" ")):
            piece = word if index == 0 else " " + word
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            await event("content_block_delta", delta)
        await event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": self.usage["output_tokens"]},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response
