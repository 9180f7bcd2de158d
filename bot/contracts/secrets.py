"""Spot things in a reply that look like credentials: the one detector lives in bot.secrets_logic (shared with
the log scrubber); this name stays for the contracts that import it."""

from __future__ import annotations

from bot.secrets_logic import find_secrets, looks_random, redact, shannon_entropy

__all__ = ["find_secrets", "looks_random", "redact", "shannon_entropy"]
