"""Lukas's lean tokenizer (issue 17) counts and truncates exactly like a stock tiktoken encoding.

The lean encoding drops tiktoken's Python copy of the ranks to save memory: not one count may change.
"""

from __future__ import annotations

import random

import pytest
import tiktoken

from bot import heap
from bot.tokens import counting
from bot.tokens.counting import count_message, count_text, encoding_for, lean_encoding, truncate_text

ENCODINGS = ("cl100k_base", "o200k_base")
MODEL_FOR = {"cl100k_base": "gpt-3.5-turbo", "o200k_base": "gpt-4.1-mini"}

FIXED = [
    "",
    " ",
    "Hello world",
    "Honey is the best thing a bear can think of, said Lukas, and he meant it.",
    "Grüße aus Zürich! Die Bärin aß süße Äpfel; Öl, Übermut, Straße, ß and ẞ.",
    "🐻🍯 🐻‍❄️ 👩🏽‍🔬 🇩🇪🇯🇵 ❤️‍🔥 1️⃣ 👍🏿👍🏻",
    "熊は蜂蜜が大好きです。我爱吃蜂蜜。꿀벌이 꿀을 만든다。",
    "مرحبا بالعالم שלום עולם Привет, мир! Γειά σου κόσμε",
    'def f(x: int) -> dict[str, int]:\n    return {"a": x ** 2}  # comment\n\n\tif x:\n\t\tpass\n',
    "```python\nprint('hi')\n```\n> quoted *bold* _it_ ~strike~ `code`",
    " " * 500 + "x" + "\n" * 300 + "\t" * 50 + "y" + " \n" * 200,
    "<@U123ABC> hi <!here> <#C0GENERAL|general> <https://example.com/a?b=c&d=e|a link> :bear: :honey_pot:",
    "<|endoftext|> <|fim_prefix|><|fim_middle|><|fim_suffix|> <|endofprompt|> <|im_start|>user<|im_end|>",
    "<|endoftext|>",
    "a" * 10_000,
    "1234567890" * 200 + " 3.14159 -0.5e10 0xDEADBEEF",
    "lone surrogate \ud800 in the middle",  # tiktoken's own UnicodeEncodeError fix-up path
    "\x00\x01\x02 control \x7f\u200b\u200d\ufeff zero width",
]


def _random_texts(count: int, seed: int = 17) -> list[str]:
    """Deterministic noise over many scripts, so the comparison sees far more than the fixed examples."""
    rng = random.Random(seed)
    ranges = [(0x20, 0x7E), (0xA0, 0x17F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF), (0x3040, 0x30FF),
              (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0x1F300, 0x1F64F), (0x2000, 0x206F)]  # fmt: skip
    texts = []
    for _ in range(count):
        pieces = []
        for _ in range(rng.randint(1, 60)):
            low, high = rng.choice(ranges)
            pieces.append("".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 12))))
            pieces.append(rng.choice([" ", "", "\n", "  ", ", ", ". "]))
        texts.append("".join(pieces))
    return texts


CORPUS = FIXED + _random_texts(300) + ["\n\n".join(FIXED) * 5]


@pytest.fixture(scope="module")
def stock() -> dict[str, tiktoken.Encoding]:
    counting.use_shipped_encodings()
    return {name: tiktoken.get_encoding(name) for name in ENCODINGS}


def _stock_truncate(encoding: tiktoken.Encoding, text: str, max_tokens: int) -> str:
    tokens = encoding.encode(text, disallowed_special=())
    return text if len(tokens) <= max_tokens else encoding.decode(tokens[: max(max_tokens, 0)])


@pytest.mark.parametrize("name", ENCODINGS)
def test_the_lean_encoding_is_token_for_token_the_stock_one(name: str, stock: dict[str, tiktoken.Encoding]) -> None:
    lean, reference = lean_encoding(name), stock[name]
    assert lean is not reference
    model = MODEL_FOR[name]
    assert encoding_for(model) is lean
    for text in CORPUS:
        tokens = reference.encode(text, disallowed_special=())
        assert lean.encode(text, disallowed_special=()) == tokens, text[:80]
        assert count_text(text, model=model) == len(tokens)
        assert count_message(text, model=model, name="Anna") == len(tokens) + 4
        assert lean.decode(tokens) == reference.decode(tokens)


@pytest.mark.parametrize("name", ENCODINGS)
def test_truncation_is_unchanged(name: str, stock: dict[str, tiktoken.Encoding]) -> None:
    model, reference = MODEL_FOR[name], stock[name]
    for text in CORPUS[:60] + CORPUS[-1:]:
        length = len(reference.encode(text, disallowed_special=()))
        for max_tokens in sorted({0, 1, 2, 5, 17, length // 2, length - 1, length, length + 1}):
            expected = _stock_truncate(reference, text, max_tokens)
            assert truncate_text(text, max_tokens=max_tokens, model=model) == expected, (text[:80], max_tokens)


def test_unknown_models_use_the_configured_default_lean_encoding() -> None:
    assert encoding_for("my-local-llama", "o200k_base") is lean_encoding("o200k_base")
    assert encoding_for("ollama:my-local-llama", "cl100k_base") is lean_encoding("cl100k_base")


def test_the_python_ranks_are_gone_but_tiktoken_still_hands_out_stock_encodings() -> None:
    lean = lean_encoding("o200k_base")
    assert not hasattr(lean, "_mergeable_ranks")  # the ~26 MB dict the shrink is about
    assert lean.n_vocab == tiktoken.get_encoding("o200k_base").n_vocab
    assert len(tiktoken.get_encoding("o200k_base")._mergeable_ranks) > 199_000  # the shared registry's is intact


def test_an_unknown_encoding_name_still_fails_like_tiktoken() -> None:
    with pytest.raises(ValueError, match="Unknown encoding"):
        lean_encoding("no_such_base")


def test_heap_trim_runs_where_glibc_is() -> None:
    import platform
    import sys

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert heap.trim() is expected


async def test_the_heap_is_trimmed_periodically_and_arenas_are_limited_unless_the_admin_set_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    trims: list[int] = []
    monkeypatch.setattr(heap, "trim", lambda: trims.append(1) or True)
    task = asyncio.create_task(heap.trim_periodically(0.01))
    await asyncio.sleep(0.1)
    task.cancel()
    assert len(trims) >= 3
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert heap.limit_arenas() is False  # the admin's setting wins (glibc read it at start)
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert heap.limit_arenas() is (heap._glibc() is not None)


def test_after_start_what_was_loaded_is_frozen() -> None:
    import gc

    try:
        heap.settle_after_start()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
