"""Secret detection in replies: real-looking credentials are found, ordinary text is not."""

from __future__ import annotations

import pytest

from bot.contracts.secrets import find_secrets, redact, shannon_entropy

SECRETS = {
    "openai_key": "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4",
    "openai_project_key": "sk-proj-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0",
    "slack_bot": "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOp",
    "slack_user": "xoxp-" + "123456789012-123456789012-abcdef",
    "slack_app": "xapp-" + "1-A0123456789-1234567890-abcdef0123",
    "slack_legacy": "xoxa-" + "2-abcdefghij1234",
    "slack_session": "xoxs-" + "abcdefghij1234567",
    "aws": "AKIA" + "IOSFODNN7EXAMPLE",
    "github": "ghp_" + "a" * 20 + "B1c2D3e4F5g6H7i8",
    "webhook": "https://hooks.slack.com/services/" + "T000/B000/XXXXXXXXXXXXXXXX",
}


@pytest.mark.parametrize("secret", list(SECRETS.values()), ids=list(SECRETS))
def test_known_credentials_are_found_and_redacted(secret: str) -> None:
    text = f"Sure, here you go: {secret} — keep it safe!"
    spans = find_secrets(text)
    assert spans, secret
    redacted = redact(text, spans, replacement="[redacted]")
    assert secret not in redacted
    assert redacted.startswith("Sure, here you go: [redacted]")
    assert redacted.endswith(" — keep it safe!")


@pytest.mark.parametrize(
    "text",
    [
        'api_key = "q8Zr3LmV0x7Kp2Wd9sYt"',
        "OPENAI_API_KEY: q8Zr3LmV0x7Kp2Wd9sYtBn4",
        "password=Tr0ub4dor&3xYz9Qw8Rt",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abc123",
    ],
)
def test_generic_assignments_redact_only_the_value(text: str) -> None:
    spans = find_secrets(text)
    assert len(spans) == 1
    start, _end, kind = spans[0]
    assert kind == "credential"
    assert text[:start].rstrip("\"' ").endswith(("=", ":", "Bearer"))


@pytest.mark.parametrize(
    "text",
    [
        "The task-sk-learn pipeline is ready.",
        "Use scikit-learn (sk-learn) for that.",
        "password: correcthorsebatterystaple",  # words, no digits: not random-looking
        "token = 1234567890123456789",  # a number, not a key
        "Commit 3f9a2b7c1d0e8f6a5b4c3d2e1f0a9b8c7d6e5f4a fixed it",  # hashes are fine
        "xoxo - hugs from Lukas 🐻",
        "Our AKIA team meeting is on Monday",
        "",
    ],
)
def test_ordinary_text_is_not_a_secret(text: str) -> None:
    assert find_secrets(text) == []


def test_private_key_block_is_redacted_whole() -> None:
    text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nbye"
    assert redact(text, find_secrets(text), replacement="[redacted]") == "key:\n[redacted]\nbye"


def test_entropy() -> None:
    assert shannon_entropy("") == 0
    assert shannon_entropy("aaaa") == 0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
