"""Token counting with tiktoken, offline: the encodings ship with the package (DESIGN.md)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import tiktoken

SHIPPED_ENCODINGS_DIR = Path(__file__).parent / "tiktoken_files"
# The OpenAI cookbook's accounting for chat messages.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


def use_shipped_encodings() -> None:
    """Point tiktoken at the bundled files unless the admin chose a cache dir of their own."""
    if not os.environ.get("TIKTOKEN_CACHE_DIR") and not os.environ.get("DATA_GYM_CACHE_DIR"):
        os.environ["TIKTOKEN_CACHE_DIR"] = str(SHIPPED_ENCODINGS_DIR)


@lru_cache(maxsize=64)
def encoding_for(model: str, default: str = "cl100k_base") -> tiktoken.Encoding:
    """The model's encoding, or the configured default for models tiktoken does not know."""
    use_shipped_encodings()
    name = model.split(":", 1)[-1].split("/")[-1]
    try:
        return tiktoken.encoding_for_model(name)
    except KeyError:
        return tiktoken.get_encoding(default)


def count_text(text: str, *, model: str, default_encoding: str = "cl100k_base") -> int:
    return len(encoding_for(model, default_encoding).encode(text, disallowed_special=()))


def count_message(content: str, *, model: str, default_encoding: str = "cl100k_base", name: str | None = None) -> int:
    """Tokens one chat message costs in a prompt, per-message overhead included."""
    overhead = TOKENS_PER_MESSAGE + (TOKENS_PER_NAME if name else 0)
    return overhead + count_text(content, model=model, default_encoding=default_encoding)


@lru_cache(maxsize=256)
def count_message_cached(content: str, *, model: str, default_encoding: str = "cl100k_base") -> int:
    """For short texts that repeat on every request (the persona prompt, "Name: " prefixes)."""
    return count_message(content, model=model, default_encoding=default_encoding)


def truncate_text(text: str, *, max_tokens: int, model: str, default_encoding: str = "cl100k_base") -> str:
    """Keep the first max_tokens tokens of text (used to shorten one enormous message, not refuse it)."""
    encoding = encoding_for(model, default_encoding)
    tokens = encoding.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    return encoding.decode(tokens[: max(max_tokens, 0)])
