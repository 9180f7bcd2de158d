"""The walls of the house: the chat core knows no Slack, tokens sit below everyone, and the port really is a seam."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.chat.ports import ReplyTarget
from bot.chat.service import ChatService
from bot.config.live import LiveConfig
from bot.config.loader import load_config
from bot.contracts.live import ContractsHolder
from bot.llm.gateway import ChatGateway
from bot.store import migrate
from bot.store.db import create_engine, session_factory
from bot.store.models import LLMCall, Message
from bot.store.units import UnitRunner
from tests.harness import message_event, write_config
from tests.helpers import in_thread
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.recording_platform import RecordingPlatform

BOT = Path(__file__).resolve().parents[2] / "bot"

# package -> packages it must never import (directly, lazily inside a function, or under TYPE_CHECKING)
FORBIDDEN = {
    "bot.chat": ("bot.slack",),
    "bot.llm": ("bot.slack", "bot.chat"),
    "bot.contracts": ("bot.slack", "bot.chat"),
    "bot.store": ("bot.slack",),  # chat_repo stores the chat core's own records (IncomingMessage, StoredMessage)
    "bot.tokens": ("bot.slack", "bot.chat", "bot.llm", "bot.contracts", "bot.store"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(BOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module an import statement in the file names, relative imports resolved."""
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _edges() -> list[tuple[str, str]]:
    return [(_module_name(path), imported) for path in sorted(BOT.rglob("*.py")) for imported in _imports(path)]


def _violations(edges: list[tuple[str, str]]) -> list[str]:
    bad = []
    for module, imported in edges:
        for package, forbidden in FORBIDDEN.items():
            if module == package or module.startswith(package + "."):
                bad += [
                    f"{module} imports {imported}"
                    for wall in forbidden
                    if imported == wall or imported.startswith(wall + ".")
                ]
    return sorted(set(bad))


def test_no_forbidden_import_edges() -> None:
    edges = _edges()
    assert len(edges) > 200  # the walk really saw the code
    assert _violations(edges) == []


def test_the_check_catches_a_lazy_or_relative_slack_import(tmp_path: Path) -> None:
    assert _violations([("bot.chat.service", "bot.slack.replies.post_reply")]) == [
        "bot.chat.service imports bot.slack.replies.post_reply"
    ]
    sneaky = BOT / "chat" / "_sneaky_probe.py"
    sneaky.write_text("def later():\n    from ..slack import replies\n    return replies\n")
    try:
        assert "bot.chat._sneaky_probe imports bot.slack" in _violations(_edges())
    finally:
        sneaky.unlink()


@pytest.mark.parametrize("streaming", [False, True])
async def test_the_chat_core_answers_through_a_platform_that_is_not_slack(
    tmp_path: Path, database_url: str, streaming: bool
) -> None:
    in_thread(migrate.upgrade, database_url)
    async with OpenAIStandIn(reply="Bees make honey, and I eat it. 🐻") as llm:
        path = write_config(
            tmp_path / "config.yml", llm_base_url=llm.base_url, overrides={"streaming": {"enabled": streaming}}
        )
        config = LiveConfig(load_config(path), path=path)
        engine = create_engine(database_url)
        store = UnitRunner(engine)
        platform = RecordingPlatform(names={"U0ANNA": "Anna"})
        gateway = ChatGateway(config=config, api_keys={"openai": "sk-test"})
        chat = ChatService(
            config=config, store=store, platform=platform, gateway=gateway, contracts=ContractsHolder(config)
        )
        try:
            outcome = await chat.accept_event(
                event=message_event(text="What do bees make?", channel="D0SEAM", ts="1700000000.000100"),
                event_type="message",
                event_id="EvSEAM1",
                team_id="T0TEAM",
                bot_user_id="U0LUKAS",
                bot_id="B0LUKAS",
            )
            assert outcome == "accepted"
            for _ in range(200):
                if platform.posts and not chat.in_flight:
                    break
                await asyncio.sleep(0.02)

            (posted,) = platform.posts
            # a stream names who it is for (Slack's chat_stream needs it); a whole post needs only the place
            # (and both carry the people taking part, the only ones a reply may mention)
            anna = frozenset({"U0ANNA"})
            expected = (
                ReplyTarget("D0SEAM", None, "T0TEAM", "U0ANNA", anna)
                if streaming
                else ReplyTarget("D0SEAM", None, participants=anna)
            )
            assert posted.target == expected
            assert (posted.text, posted.streamed) == ("Bees make honey, and I eat it. 🐻", streaming)
            assert platform.thinking_shown == 1 and platform.thinking == []  # shown while working, then cleared
            assert llm.chat_requests[0].body["messages"][-1] == {"role": "user", "content": "Anna: What do bees make?"}

            async with session_factory(engine)() as session:
                rows = (await session.execute(select(Message).order_by(Message.id))).scalars().all()
                calls = (await session.execute(select(LLMCall))).scalars().all()
            assert [(r.sender, r.content, r.reply_state) for r in rows] == [
                ("user", "What do bees make?", "done"),
                ("bot", "Bees make honey, and I eat it. 🐻", None),
            ]
            assert rows[1].slack_ts == posted.ts and [c.outcome for c in calls] == ["ok"]
        finally:
            await gateway.aclose()
            await asyncio.to_thread(store.close)
            await engine.dispose()
