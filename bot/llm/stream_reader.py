"""Reading a streamed chat reply (any-llm `stream=True`) piece by piece."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from any_llm import AnyLLM

from bot.errors import IncompleteStream

DeltaSink = Callable[[str], bool]  # gets each new piece of text; returns False to stop the stream


@dataclass
class Reading:
    """What one streamed attempt has read so far."""

    text: str = ""
    finish_reason: str | None = None
    usage: Any = None
    streamed: bool = False
    stopped: bool = False


async def read_stream(
    client: AnyLLM,
    model: str,
    messages: list[dict[str, Any]],
    sampling: dict[str, Any],
    on_delta: DeltaSink,
    reading: Reading,
) -> None:
    """Read a streamed reply into `reading`, handing each piece of text to `on_delta`."""
    llm_stream = await client.acompletion(
        model=model,
        messages=messages,  # type: ignore[arg-type]  # any-llm asks for a list of a wider (invariant) type
        stream=True,
        stream_options={"include_usage": True},
        **sampling,
    )
    try:
        async for chunk in llm_stream:  # type: ignore[union-attr]
            if getattr(chunk, "usage", None):
                reading.usage = chunk.usage
            for choice in getattr(chunk, "choices", None) or []:
                piece = choice.delta.content if choice.delta is not None else None
                if piece:
                    reading.text += piece
                    reading.streamed = True
                    if not on_delta(piece):
                        reading.stopped = True
                        return
                if choice.finish_reason:
                    reading.finish_reason = choice.finish_reason
        if reading.finish_reason is None:
            raise IncompleteStream("the model's stream ended without a finish reason")
    finally:
        with contextlib.suppress(Exception):
            await llm_stream.aclose()  # type: ignore[union-attr]
