"""`lukas forget --user U…`: admins erase a person's messages from the command line."""

from __future__ import annotations

import asyncio

from sqlalchemy import insert, select

from bot.store.db import create_engine
from bot.store.models import Conversation, LLMCall, Message
from tests.helpers import clean_env, run_lukas


async def _seed(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            conversation = await connection.scalar(
                insert(Conversation).values(channel_id="D0DM", kind="dm").returning(Conversation.id)
            )
            for user, text in (("U0ANNA", "my secret"), ("U0ANNA", "another"), ("U0BEN", "ben's words")):
                await connection.execute(
                    insert(Message).values(
                        conversation_id=conversation,
                        channel_id="D0DM",
                        user_id=user,
                        sender="user",
                        content=text,
                        token_count=3,
                    )
                )
            await connection.execute(insert(LLMCall).values(provider="openai", model="m", outcome="ok", cost_usd=0.1))
    finally:
        await engine.dispose()


async def _contents(url: str) -> list[tuple[str | None, str, bool]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(Message.user_id, Message.content, Message.erased_at.is_not(None)))
            return [tuple(r) for r in rows]
    finally:
        await engine.dispose()


async def test_lukas_forget_user_says_how_many_and_erases_only_that_person(migrated_db: str) -> None:
    await _seed(migrated_db)
    env = clean_env(DATABASE_URL=migrated_db)
    dry = await asyncio.to_thread(run_lukas, "forget", "--user", "U0ANNA", "--dry-run", env=env)
    assert dry.returncode == 0 and "2 message(s)" in dry.stdout and "would be erased" in dry.stdout
    done = await asyncio.to_thread(run_lukas, "forget", "--user", "U0ANNA", env=env)
    assert done.returncode == 0, done.stderr
    assert "erased the text of 2 message(s)" in done.stdout
    assert sorted(await _contents(migrated_db)) == [
        ("U0ANNA", "", True),
        ("U0ANNA", "", True),
        ("U0BEN", "ben's words", False),
    ]
    again = await asyncio.to_thread(run_lukas, "forget", "--user", "U0ANNA", env=env)
    assert "0 message(s)" in again.stdout
    bad = await asyncio.to_thread(run_lukas, "forget", "--user", "anna", env=env)
    assert bad.returncode == 2 and "not a Slack user ID" in bad.stderr
