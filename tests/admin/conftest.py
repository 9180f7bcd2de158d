"""Shared bits for the admin tests: a running Lukas whose config.yml the test edits while it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness import Harness, deep_merge, write_config

ADMIN = "U0ADMIN"
ADMIN_DM = "D0ADMIN"  # what the Slack stand-in's conversations.open answers for U0ADMIN
BASE: dict[str, Any] = {"admins": [ADMIN], "reload": {"poll_seconds": 0.1}}


def rewrite(h: Harness, path: Path, overrides: dict[str, Any] | None = None) -> None:
    """Save config.yml again as the harness wrote it, plus `overrides` (a valid edit)."""
    write_config(path, llm_base_url=h.llm.base_url, overrides=deep_merge(BASE, overrides or {}))


def admin_dms(h: Harness) -> list[str]:
    return h.slack.posted_texts(ADMIN_DM)
