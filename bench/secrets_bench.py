"""How long the one secret detector takes on a 2 KB reply (target: < 0.5 ms), with and without a secret in it,
and on a short log line. Prints numbers; never fails on time.

    .venv/bin/python bench/secrets_bench.py
"""

from __future__ import annotations

import random
import statistics
import time

from bot.secrets_logic import FAMILIES, find_secrets, scrub

PROSE = (
    "the bear loves honey and naps under the old oak tree while bees hum softly nearby; your api key to "
    "happiness is a token of friendship, see https://docs.example.org/guide for the password reset steps"
)


WORDS = PROSE.split(" ")


def reply(size: int, *, secret: str = "", seed: int = 1) -> str:
    rng = random.Random(seed)
    text = " ".join(rng.choice(WORDS) for _ in range(size // 3))[: size - len(secret) - 1]
    return f"{text} {secret}" if secret else text


def measure(text: str, runs: int = 2000) -> tuple[float, float]:
    for _ in range(100):
        find_secrets(text)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        find_secrets(text)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main() -> None:
    print(f"secret families: {len(FAMILIES)}")
    cases = {
        "2 KB reply, no secret": reply(2048),
        "2 KB reply, one key": reply(2048, secret="api_key = " + "q8Zr3LmV0x7Kp2Wd9sYtBn4"),
        "2 KB reply, Slack token": reply(2048, secret="xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKl"),
        "log line (90 chars)": "answering message 42 failed: ProviderError: 503 from https://api.example/v1 (retry)",
    }
    for name, text in cases.items():
        p50, p99 = measure(text)
        print(f"{name:28s} p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    assert "[redacted]" in scrub(cases["2 KB reply, Slack token"])


if __name__ == "__main__":
    main()
