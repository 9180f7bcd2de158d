"""Ollama's chat API on 127.0.0.1, in its own wire format: `POST /api/chat`, no key.

A plain answer is one JSON object with `done: true`, `prompt_eval_count` and `eval_count`; a stream is
newline-delimited JSON (application/x-ndjson), one object per piece and a last one with `done: true`.
Errors are `{"error": "..."}`, e.g. 404 for a model that was never pulled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.standins import serve_on_loopback, stop
from tests.standins.openai_api import LLMRequest


@dataclass
class OllamaFault:
    status: int = 500
    message: str = "llama runner process has terminated"


def model_not_found(model: str) -> OllamaFault:
    return OllamaFault(404, f'model "{model}" not found, try pulling it first')


class OllamaStandIn:
    def __init__(self, *, reply: str = "Hello from the local cave! 🐻") -> None:
        self.reply = reply
        self.prompt_eval_count = 27
        self.eval_count = 9
        self.faults: list[OllamaFault] = []
        self.requests: list[LLMRequest] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """What `api_base` is set to (Ollama's host, like OLLAMA_HOST)."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> OllamaStandIn:
        app = web.Application()
        app.router.add_post("/api/chat", self._chat)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await stop(self._runner)

    def _chunk(self, model: str, content: str, *, done: bool) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "model": model,
            "created_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            "message": {"role": "assistant", "content": content},
            "done": done,
        }
        if done:
            chunk.update(
                done_reason="stop",
                total_duration=1_000_000,
                load_duration=10_000,
                prompt_eval_count=self.prompt_eval_count,
                prompt_eval_duration=100_000,
                eval_count=self.eval_count,
                eval_duration=500_000,
            )
        return chunk

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(LLMRequest(request.path, body, {k.lower(): v for k, v in request.headers.items()}))
        if self.faults:
            fault = self.faults.pop(0)
            return web.json_response({"error": fault.message}, status=fault.status)
        model = body.get("model", "llama-stand-in")
        if body.get("stream", True) is False:  # Ollama streams unless told not to
            return web.json_response(self._chunk(model, self.reply, done=True))
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for index, word in enumerate(self.reply.split(" ")):
            piece = word if index == 0 else " " + word
            await response.write((json.dumps(self._chunk(model, piece, done=False)) + "\n").encode())
            await asyncio.sleep(0)
        await response.write((json.dumps(self._chunk(model, "", done=True)) + "\n").encode())
        await response.write_eof()
        return response
