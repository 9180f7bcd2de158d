"""The fault-and-load soak (bench/soak.py) on a small load: same ledger, same promises, a few seconds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench.soak import Ledger, SoakParams, run_soak

SHORT = SoakParams(
    conversations=8,
    messages_per_conversation=3,
    unsigned_requests=6,
    malformed_requests=5,
    redeliver_fraction=0.3,
    slack_ratelimit_probability=0.1,
    reply_timeout=40,
    seed=3,
)


async def test_short_soak_loses_nothing_and_answers_once(tmp_path: Path, database_url: str) -> None:
    ledger: Ledger = await run_soak(replace(SHORT, database_url=database_url), workdir=tmp_path, verbose=False)
    report = "\n".join(ledger.lines())
    assert ledger.survived, report
    assert ledger.user_messages_expected == 8 * 3, report
    assert ledger.user_messages_stored == ledger.user_messages_expected, report
    assert ledger.lost == 0 and ledger.duplicates == 0, report
    assert ledger.replies_posted + ledger.fallbacks_posted == ledger.user_messages_expected, report
    assert ledger.redeliveries_sent > 0 and ledger.rejected, report  # the faults really were injected
    assert sum(n for why, n in ledger.rejected.items() if "401" in why) == 6, report
    assert not any("HTTP 500" in why or "HTTP 0" in why for why in ledger.rejected), report
