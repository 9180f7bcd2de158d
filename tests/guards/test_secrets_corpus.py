"""One secret detector: the same corpus is caught on the log path (scrubber) and the reply path (reply policy)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config.contracts_schema import ContractsConfig
from bot.contracts.engine import ContractEngine
from bot.contracts.metrics import ContractMetrics
from bot.logging_setup import configure_logging
from bot.secrets_logic import find_secrets

# Values are assembled from parts so no scanner mistakes this file for a leak.
CORPUS = {
    # the log scrubber used to miss these
    "google": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "github": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "groq": "gsk_" + "q8Zr3LmV0x7Kp2Wd9sYtBn4Hj6Fg1Ds5A",
    "bearer": "Authorization: Bearer " + "q8Zr3LmV0x7Kp2Wd9sYtBn4Hj6",
    # the reply policy used to miss these
    "url_password": "postgresql://lukas:" + "Sup3rS3cretPw" + "@db.example:5432/lukas",
    "stripe": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "jwt": "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "gitlab": "glpat-" + "xK9mP2qR7sT4vW1yZ3bC",
    "npm": "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "pypi": "pypi-"
    + "AgEIcHlwaS5vcmc"
    + "CJGFiY2RlZmdoLTEyMzQtNTY3OC05MDEyLWFiY2RlZjEyMzQ1NgACKlszLCJhYmNkZWYiXQAABiD",
    "huggingface": "hf_" + "aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1w",
    # both had these
    "openai": "sk-proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0",
    "slack": "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOp",
    "aws": "AKIA" + "IOSFODNN7EXAMPLE",
    # detect-secrets families
    "sendgrid": "SG." + "ngeVfQFYQlKU0ufo8x5d1A" + ".TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr",
    "square": "sq0csp-" + "0p9h7g6f5e4d3c2b1a0-0p9h7g6f5e4d3c2b1a0abcd",
    "twilio": "SK" + "0123456789abcdef0123456789abcdef",
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
}
SECRET_PARTS = {
    "bearer": "q8Zr3LmV0x7Kp2Wd9sYtBn4Hj6",
    "url_password": "Sup3rS3cretPw",
    "private_key": "MIIEowIBAAKCAQEA",
}


def _secret(name: str) -> str:
    return SECRET_PARTS.get(name, CORPUS[name])


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(level="INFO", json_lines=False, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


@pytest.mark.parametrize("name", list(CORPUS))
def test_the_log_scrubber_removes_every_secret_in_the_corpus(name: str, log_stream: io.StringIO) -> None:
    logging.getLogger("lukas.test").warning("provider said: %s (retrying)", CORPUS[name])
    written = log_stream.getvalue()
    assert "provider said:" in written and "[redacted]" in written
    assert _secret(name) not in written


@pytest.mark.parametrize("name", list(CORPUS))
def test_the_reply_policy_redacts_every_secret_in_the_corpus(name: str, tmp_path: Path) -> None:
    config = ContractsConfig.model_validate({"chat_output": [{"name": "reply_policy"}]})
    engine = ContractEngine.from_config(config, base_dir=tmp_path, metrics=ContractMetrics())
    outcome = engine.check_reply(f"Here you go: {CORPUS[name]} — keep it safe 🐻")
    assert _secret(name) not in outcome.value
    assert "[redacted]" in outcome.value and outcome.value.startswith("Here you go: ")


@pytest.mark.parametrize(
    "text",
    [
        "The APACHECONFIG file and the SKILLSETS workshop are on Monday.",
        "Honey costs 12345678: per jar, and the us-east-1 list is long.",
        "See https://docs.python.org/3/library/re.html for the details.",
        "The key to happiness is a token of honey: password reset happens at the door.",
        "Lukas the Bear loves pancakes " * 60,
    ],
)
def test_ordinary_replies_have_no_secrets(text: str) -> None:
    assert find_secrets(text) == []
