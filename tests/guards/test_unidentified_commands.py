"""`/lukas` without a usable user_id fails closed: nothing runs, nothing falls through to another command (an empty
user_id once made `/lukas forget` run the admin-only `image now`)."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.admin import commands_logic as logic
from bot.slack.commands import register_commands
from bot.store.models import GeneratedImage
from tests.harness import running_lukas

ADMIN = "U0ADMIN"
COMMAND_TEXTS = ["forget", "forget confirm", "image now", "status", "usage 7", "reload", "draw a rocket", "help", ""]
UNIDENTIFIED_ACK = {"text": logic.UNIDENTIFIED, "response_type": "ephemeral"}


async def test_a_command_without_a_user_id_runs_nothing(tmp_path: Path, database_url: str) -> None:
    overrides = {"admins": [ADMIN], "pictures": {"daily_quota_per_person": 3}}
    async with running_lukas(tmp_path, database_url, overrides=overrides) as h:
        for user in ("", "anna", "U0ADMIN "):
            for text in COMMAND_TEXTS:
                status, ack = await h.command(text, user=user, key=f"{user}:{text}")
                assert (status, ack) == (200, UNIDENTIFIED_ACK), (user, text)
        await asyncio.sleep(0.3)  # anything spawned after the ack would answer by now
        await h.lukas.pictures.drain(5)
        assert h.slack.responses() == [] and h.slack.posted_texts() == []
        assert await h.rows(GeneratedImage) == [] and h.llm.image_requests == []

        status, ack = await h.command("forget", user="U0ANNA", key="anna")  # a person Slack names still can
        assert status == 200 and ack is None
        await h.wait_until(lambda: bool(h.slack.responses("anna")))
        assert "nothing to forget" in h.slack.responses("anna")[0]["text"]


class _Tripwire:
    """Stands in for AdminCommands: any use of it is a command that ran."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the command path used admin.{name}")


def _handler() -> Callable[..., Any]:
    handlers: list[Callable[..., Any]] = []

    class App:
        def command(self, _name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
            return lambda handler: handlers.append(handler) or handler

    register_commands(App(), _Tripwire())  # type: ignore[arg-type]
    (handler,) = handlers
    return handler


UNUSABLE_USER_IDS = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=40).filter(lambda text: logic.identified(text) is None),
    st.sampled_from(["", " ", "U0ADMIN ", " U0ADMIN", "u0admin", "U0ADMIN\n", "U", "USLACKBOT!"]),
)
TEXTS = st.one_of(st.sampled_from(COMMAND_TEXTS), st.text(max_size=40))


@given(text=TEXTS, user_id=UNUSABLE_USER_IDS, extra=st.booleans())
def test_no_command_runs_for_a_person_slack_does_not_name(text: str, user_id: object, extra: bool) -> None:
    acks: list[dict[str, Any]] = []

    async def ack(**body: Any) -> None:
        acks.append(body)

    command = {"text": text, "channel_id": "C0GENERAL", "trigger_id": "1.2.abc"}
    if user_id is not None or extra:  # absent, or present as None
        command["user_id"] = user_id
    running = _handler()(ack=ack, command=command, respond=_Tripwire(), client=_Tripwire())
    with pytest.raises(StopIteration):  # done at once: refusing waits for nothing (no database, no Slack)
        running.send(None)
    assert acks == [UNIDENTIFIED_ACK]


SLACK_IDS = st.builds(
    "".join, st.tuples(st.sampled_from("UW"), st.text(string.ascii_uppercase + string.digits, min_size=2, max_size=31))
)


@given(text=TEXTS, user_id=st.one_of(UNUSABLE_USER_IDS, SLACK_IDS), admins=st.lists(SLACK_IDS, max_size=3))
def test_only_a_named_person_may_run_anything_and_only_admins_admin_commands(
    text: str, user_id: object, admins: list[str]
) -> None:
    parsed = logic.parse_command(text)
    if isinstance(parsed, logic.ParseError):
        return
    allowed = logic.may_run(command=parsed, user_id=user_id, admins=[*admins, ""])  # type: ignore[arg-type]
    named = logic.identified(user_id)
    assert allowed == (named is not None and (parsed.name in logic.OPEN_TO_EVERYONE or named in admins))
