"""Admins see memory: `/lukas status` counts conversations with a summary, `lukas usage` shows summary calls and
their cost apart from replies. The manifest grants what reading a thread needs."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.admin.conftest import ADMIN, BASE
from tests.harness import deep_merge, running_lukas
from tests.helpers import REPO_ROOT
from tests.memory.test_summaries import NO_LIMITS, converse, scripted_llm


async def test_status_counts_summaries_and_usage_shows_their_calls_and_cost(tmp_path: Path, database_url: str) -> None:
    llm = scripted_llm()
    async with llm, running_lukas(tmp_path, database_url, llm=llm, overrides=deep_merge(BASE, NO_LIMITS)) as h:
        await converse(h, [f"note {i}" for i in range(1, 15)])  # 28 messages: one summary
        summary_calls = [c for c in await h.llm_calls() if c.purpose == "summary"]
        chat_calls = [c for c in await h.llm_calls() if c.purpose == "chat"]
        assert len(summary_calls) == 1 and len(chat_calls) == 14

        await h.command("status", user=ADMIN, key="status")
        await h.wait_until(lambda: len(h.slack.responses("status")) == 1)
        status = h.slack.responses("status")[0]["text"]
        assert "Memory: summaries on, 1 conversation(s) with a summary; reads threads when mentioned" in status

        await h.command("usage 7", user=ADMIN, key="usage")
        await h.wait_until(lambda: len(h.slack.responses("usage")) == 1)
        usage = h.slack.responses("usage")[0]["text"]
        summary_cost = sum(c.cost_usd for c in summary_calls)
        chat_cost = sum(c.cost_usd for c in chat_calls)
        assert (
            f"of which conversation summaries (memory): 1 calls, ${summary_cost:.4f}; "
            f"replies: 14 calls, ${chat_cost:.4f}"
        ) in usage


def test_the_manifest_grants_reading_threads_in_public_and_private_channels() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "slack-manifest.yml").read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # conversations.replies needs the history scope of the conversation type the thread lives in.
    assert {"channels:history", "groups:history", "im:history"} <= scopes
