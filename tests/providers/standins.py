"""Test doubles for issue 8: an OpenAI stand-in whose streams can break, and readers for Slack's stream calls."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.standins.openai_api import OpenAIStandIn
from tests.standins.slack_api import SlackCall, SlackStandIn


@dataclass
class StreamFault:
    """Break the next streamed reply after `after` chunks: "bad_json" (a chunk that is not JSON) or "cut" (the
    connection ends without a finish reason, mid-sentence)."""

    kind: str
    after: int = 3


class StreamingLLM(OpenAIStandIn):
    """OpenAIStandIn plus stream faults, and the moment each stream's first token was sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream_faults: list[StreamFault] = []
        self.first_token_at: list[tuple[float, dict[str, Any]]] = []  # (time.monotonic(), request body)

    async def _stream(self, request: web.Request, completion_id: str, model: str, text: str) -> web.StreamResponse:
        fault = self.stream_faults.pop(0) if self.stream_faults else None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        body = self.requests[-1].body
        for index, word in enumerate(text.split(" ")):
            if fault is not None and index == fault.after:
                if fault.kind == "bad_json":
                    await response.write(b'data: {"id": "x", "choices": [ not json\n\n')
                await response.write_eof()
                return response
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": {"content": word if index == 0 else " " + word}}],
            }
            if index == 0:
                self.first_token_at.append((time.monotonic(), body))
            await self._send_chunk(response, chunk)
        return await self._finish_stream(response, completion_id, model)


def call_text(call: SlackCall) -> str:
    """The text a Slack call carries: `text`, `markdown_text`, or the markdown chunks of the stream API."""
    params = call.params
    parts = [params.get("text") or "", params.get("markdown_text") or ""]
    chunks = params.get("chunks") or []
    if isinstance(chunks, str):
        chunks = json.loads(chunks)
    parts += [chunk.get("text", "") for chunk in chunks if chunk.get("type") == "markdown_text"]
    return "".join(parts)


def streamed_text(slack: SlackStandIn, channel: str) -> str:
    """Everything start/append/stop put into the stream in `channel`."""
    methods = ("chat.startStream", "chat.appendStream", "chat.stopStream")
    return "".join(call_text(c) for c in slack.calls if c.method in methods and c.params.get("channel") == channel)


def methods(slack: SlackStandIn, *, prefix: str = "chat.") -> list[str]:
    return [c.method for c in slack.calls if c.method.startswith(prefix)]


def provider(llm: OpenAIStandIn, model: str, *, window: int = 128_000, **extra: Any) -> dict[str, Any]:
    """A named provider pointing at a stand-in."""
    return {
        "provider": "openai",
        "model": model,
        "api_base": llm.base_url,
        "context_window": window,
        "price": {"input": 1.0, "output": 2.0},
        **extra,
    }


def chain(**providers: dict[str, Any]) -> dict[str, Any]:
    """Config overrides for a chain of these providers, in this order."""
    return {"providers": providers, "chat_chain": list(providers)}
