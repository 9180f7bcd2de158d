"""tiktoken works offline: the encodings ship with the package and are used when no cache dir is set."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest

from tests.helpers import clean_env

ENCODING_FILES = {
    "cl100k_base": "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
    "o200k_base": "fb374d419588a4632f3f557e76b4b70aebbca790",
}

# Runs in a fresh interpreter, so nothing tiktoken cached earlier in the test process can hide a download.
OFFLINE_SCRIPT = textwrap.dedent(
    """
    import json, os, socket, sys

    def no_network(*args, **kwargs):
        raise OSError("network is blocked in this test")

    socket.socket.connect = no_network
    socket.socket.connect_ex = no_network
    socket.create_connection = no_network
    socket.getaddrinfo = no_network

    from bot.tokens import counting as tokens

    counts = {
        "gpt-4.1-mini": tokens.count_text("Hello world", model="gpt-4.1-mini"),
        "gpt-4o": tokens.count_text("Hello world", model="gpt-4o"),
        "gpt-3.5-turbo": tokens.count_text("Hello world", model="gpt-3.5-turbo"),
        "unknown": tokens.count_text("Hello world", model="my-local-llama", default_encoding="o200k_base"),
        "provider-prefixed": tokens.count_text("Hello world", model="openai:gpt-4o"),
        "message": tokens.count_message("Hello world", model="gpt-4o", name="Ada"),
        "encodings": {
            model: tokens.encoding_for(model).name for model in ("gpt-4o", "gpt-4.1", "gpt-5", "gpt-3.5-turbo")
        },
    }
    print(json.dumps({"cache_dir": os.environ.get("TIKTOKEN_CACHE_DIR"), "counts": counts}))
    """
)


def run_offline(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_encodings_ship_inside_the_package() -> None:
    shipped = resources.files("bot.tokens") / "tiktoken_files"
    for name, blob in ENCODING_FILES.items():
        assert (shipped / blob).is_file(), f"{name} is missing from bot/tokens/tiktoken_files"


def test_counts_tokens_with_the_network_blocked(tmp_path: Path) -> None:
    env = clean_env(HOME=str(tmp_path))  # no user cache to fall back on
    env.pop("TIKTOKEN_CACHE_DIR", None)
    env.pop("DATA_GYM_CACHE_DIR", None)
    out = run_offline(env)

    from bot.tokens.counting import SHIPPED_ENCODINGS_DIR

    assert out["cache_dir"] == str(SHIPPED_ENCODINGS_DIR)  # use_shipped_encodings() pointed tiktoken at them
    counts = out["counts"]
    assert counts["gpt-4.1-mini"] == 2  # "Hello" " world"
    assert counts["gpt-4o"] == 2
    assert counts["gpt-3.5-turbo"] == 2
    assert counts["unknown"] == 2  # an unknown model falls back to the configured default, never a crash
    assert counts["provider-prefixed"] == 2
    assert counts["message"] == 2 + 3 + 1  # text + per-message overhead + name
    assert counts["encodings"] == {
        "gpt-4o": "o200k_base",
        "gpt-4.1": "o200k_base",
        "gpt-5": "o200k_base",
        "gpt-3.5-turbo": "cl100k_base",
    }


def test_an_admins_own_cache_dir_is_respected(tmp_path: Path) -> None:
    """When TIKTOKEN_CACHE_DIR is set, Lukas leaves it alone (here it holds a copy of the shipped files)."""
    from bot.tokens.counting import SHIPPED_ENCODINGS_DIR

    cache = tmp_path / "cache"
    cache.mkdir()
    for blob in ENCODING_FILES.values():
        (cache / blob).write_bytes((SHIPPED_ENCODINGS_DIR / blob).read_bytes())
    out = run_offline(clean_env(TIKTOKEN_CACHE_DIR=str(cache)))
    assert out["cache_dir"] == str(cache)
    assert out["counts"]["gpt-4o"] == 2


def test_in_process_counting_and_truncation(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from bot.tokens import counting as tokens

    def no_network(*_args: object, **_kwargs: object) -> None:
        raise OSError("network is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    text = "Lukas likes honey. " * 50
    assert tokens.count_text(text, model="gpt-4o") > 100
    short = tokens.truncate_text(text, max_tokens=10, model="gpt-4o")
    assert tokens.count_text(short, model="gpt-4o") <= 10
    assert text.startswith(short)
    assert tokens.truncate_text("hi", max_tokens=10, model="gpt-4o") == "hi"
