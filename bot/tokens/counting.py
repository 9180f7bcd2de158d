"""Token counting with tiktoken, offline: the encodings ship with the package (DESIGN.md)."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import tiktoken
import tiktoken.registry

from bot import heap

SHIPPED_ENCODINGS_DIR = Path(__file__).parent / "tiktoken_files"
# The OpenAI cookbook's accounting for chat messages.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


def use_shipped_encodings() -> None:
    """Point tiktoken at the bundled files unless the admin chose a cache dir of their own."""
    if not os.environ.get("TIKTOKEN_CACHE_DIR") and not os.environ.get("DATA_GYM_CACHE_DIR"):
        os.environ["TIKTOKEN_CACHE_DIR"] = str(SHIPPED_ENCODINGS_DIR)


_lean: dict[str, tiktoken.Encoding] = {}
_building = threading.Lock()


def lean_encoding(encoding_name: str) -> tiktoken.Encoding:
    """tiktoken's encoding without the Python dict of its ranks (~26 MB for o200k_base), loaded once.

    Encoding keeps `_mergeable_ranks` only to pickle itself; encode and decode run in its Rust CoreBPE, which holds
    its own copy. This is a private instance built from tiktoken's constructor table, so tiktoken.get_encoding()
    still hands out stock encodings. The file's parse leaves freed heap behind: it is given back at once.
    """
    if (ready := _lean.get(encoding_name)) is not None:
        return ready
    with _building:  # two threads asking at once build (and hold the peak of) one encoding, not two
        if (ready := _lean.get(encoding_name)) is not None:
            return ready
        use_shipped_encodings()
        tiktoken.list_encoding_names()  # fills the registry's constructor table (plugins included)
        constructors = tiktoken.registry.ENCODING_CONSTRUCTORS or {}
        if encoding_name not in constructors:
            return tiktoken.get_encoding(encoding_name)  # raises tiktoken's own "Unknown encoding" error
        encoding = tiktoken.Encoding(**constructors[encoding_name]())
        del encoding._mergeable_ranks
        _lean[encoding_name] = encoding
        heap.trim()
        return encoding


@lru_cache(maxsize=64)
def encoding_for(model: str, default: str = "cl100k_base") -> tiktoken.Encoding:
    """The model's encoding, or the configured default for models tiktoken does not know."""
    name = model.split(":", 1)[-1].split("/")[-1]
    try:
        encoding_name = tiktoken.encoding_name_for_model(name)
    except KeyError:
        encoding_name = default
    return lean_encoding(encoding_name)


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
