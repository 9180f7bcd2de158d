"""Pure decisions of issue 16: config validation, which rule applies, recognising a picture request, the Home view."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bot.chat import channels_logic as logic
from bot.chat.pictures_logic import picture_idea, picture_subject
from bot.config.loader import parse_config, summarize
from bot.errors import ConfigError
from bot.images.request_logic import request_key, request_prompt
from bot.slack.channel_check import membership_problem
from bot.slack.home_logic import AdminFacts, HomeFacts, Picture, home_view
from tests.harness import deep_merge
from tests.helpers import SHIPPED_CONFIG


def config(extra: dict[str, Any]) -> Any:
    raw = deep_merge(yaml.safe_load(SHIPPED_CONFIG.read_text()), extra)
    return parse_config(yaml.safe_dump(raw), env={})


def problems(extra: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config(extra)
    return caught.value.problems


PROVIDERS = {
    "providers": {
        "primary": {"provider": "openai", "model": "gpt-4.1-mini", "context_window": 1000},
        "cheap": {"provider": "openai", "model": "gpt-4o-mini", "context_window": 1000},
    }
}


def test_unknown_settings_and_entries_are_named() -> None:
    assert problems({"channels": {"C123": {"persona_adendum": "x"}}}) == [
        "channels.C123.persona_adendum: unknown setting (did you mean 'persona_addendum'?)"
    ]
    assert problems({"channels": {"defualt": {"enabled": False}}}) == [
        "channels.defualt: unknown entry (did you mean 'default'?)"
    ]
    (hash_name,) = problems({"channels": {"#random": {"enabled": False}}})
    assert hash_name.startswith("channels.#random: use the channel's ID, not its name")
    assert problems({"channels": {"C123": {"when_disabled": "shout"}}})[0].startswith("channels.C123.when_disabled:")


def test_a_chain_must_name_defined_providers() -> None:
    assert problems({**PROVIDERS, "channels": {"C123": {"chain": ["primery"]}}}) == [
        "channels.C123: chain: 'primery' is not defined under providers: (did you mean 'primary'?)"
    ]
    (no_providers,) = problems({"channels": {"C123": {"chain": ["openai"]}}})
    assert no_providers.startswith("channels.C123: chain: needs named providers under providers:")
    assert config({**PROVIDERS, "channels": {"C123": {"chain": ["cheap", "primary"]}}}).channels["C123"].chain == [
        "cheap",
        "primary",
    ]


def test_settings_resolve_channel_then_default_then_global() -> None:
    cfg = config(
        {
            "streaming": {"enabled": True},
            "channels": {
                "default": {"enabled": False, "when_disabled": "note", "persona_addendum": "everywhere"},
                "C0LAB": {
                    "enabled": True,
                    "streaming": False,
                    "limits": {"per_person": {"messages": 5, "window_seconds": 60}},
                },
                "dm": {"persona_addendum": "in DMs"},
            },
        }
    )
    lab = logic.settings_for(config=cfg, channel_id="C0LAB", is_dm=False)
    assert (lab.entry, lab.enabled, lab.streaming, lab.persona_addendum) == ("C0LAB", True, False, "everywhere")
    assert lab.limits.per_person is not None and lab.limits.per_person.messages == 5
    other = logic.settings_for(config=cfg, channel_id="C0OTHER", is_dm=False)
    assert (other.entry, other.enabled, other.when_disabled, other.streaming) == ("default", False, "note", True)
    dm = logic.settings_for(config=cfg, channel_id="D0ANNA", is_dm=True)
    assert (dm.entry, dm.enabled, dm.persona_addendum, dm.streaming) == ("dm", True, "in DMs", True)
    bare = logic.settings_for(config=config({}), channel_id="C0ANY", is_dm=False)
    assert (bare.entry, bare.enabled, bare.chain, bare.thread_follow_ups) == ("global", True, None, True)


def test_intake_decisions() -> None:
    cfg = config(
        {"channels": {"C0OFF": {"enabled": False, "when_disabled": "note"}, "C0M": {"thread_follow_ups": False}}}
    )
    off = logic.settings_for(config=cfg, channel_id="C0OFF", is_dm=False)
    assert logic.decide_intake(settings=off, mentioned=True, follow_up=False).action == logic.NOTE
    assert logic.decide_intake(settings=off, mentioned=False, follow_up=True).action == logic.IGNORE
    mentions = logic.settings_for(config=cfg, channel_id="C0M", is_dm=False)
    assert logic.decide_intake(settings=mentions, mentioned=False, follow_up=True).action == logic.IGNORE
    assert logic.decide_intake(settings=mentions, mentioned=True, follow_up=False).action == logic.ANSWER


def test_system_prompt_gets_the_addendum_appended() -> None:
    assert logic.system_prompt_for(base="You are Lukas.\n", addendum=" Be brief. ") == "You are Lukas.\n\nBe brief."
    assert logic.system_prompt_for(base="You are Lukas.", addendum=None) == "You are Lukas."


def test_config_check_shows_the_rules() -> None:
    lines = summarize(config({**PROVIDERS, "channels": {"C0LAB": {"chain": ["cheap"], "persona_addendum": "terse"}}}))
    (lab,) = [line for line in lines if line.startswith("channels.C0LAB")]
    assert "chain cheap" in lab and "persona addendum (5 characters)" in lab
    assert any(line.startswith("pictures on request: on, 3 per person per day") for line in lines)


@pytest.mark.parametrize(
    ("text", "idea"),
    [
        ("draw yourself at the beach", "yourself at the beach"),
        ("Can you paint me a picture of you in the snow?", "you in the snow"),
        ("please draw", ""),
        ("hey, could you please sketch a cat!", "a cat"),
        ("I was drawing graphs all day", None),
        ("what do you draw?", None),
        ("how do I draw a histogram in R", None),
    ],
)
def test_picture_requests_are_explicit_commands(text: str, idea: str | None) -> None:
    assert picture_idea(text, max_chars=300) == idea


def test_picture_prompt_and_key() -> None:
    images = config({}).images
    prompt = request_prompt(images=images, subject=picture_subject("yourself at the beach"))
    assert prompt == (
        "A friendly stuffed teddy bear mascot named Lukas, at the beach, whimsical illustration style, warm and "
        "inviting atmosphere, family-friendly, high quality digital art"
    )
    assert request_key(channel_id="C1", ts="1.2") == "request:C1:1.2"
    assert len(request_key(channel_id="C1", ts="x" * 100)) <= 64


def test_membership_problems() -> None:
    assert membership_problem(channel_id="C1", error=None, is_member=True) is None
    assert "not a member" in (membership_problem(channel_id="C1", error=None, is_member=False) or "")
    assert "not a member" in (membership_problem(channel_id="C1", error="channel_not_found", is_member=None) or "")


def test_home_view_for_people_and_admins() -> None:
    facts = HomeFacts(name="Lukas", picture=Picture("F1", "https://x/F1", "autumn", None), prompts=[("Hi", "Hello")])
    view = home_view(facts)
    assert (view["type"] == "home" and view["blocks"][1]["slack_file"] == {"type": "slack_file", "id": "F1"}) or (
        view["blocks"][1]["slack_file"]["id"] == "F1"
    )
    assert "For admins" not in str(view)
    admin = AdminFacts(("openai:gpt-4.1-mini",), {"openai:gpt-4.1-mini": "open"}, 1.0, None, 0.5, 5.0, None, True)
    text = str(home_view(HomeFacts(name="Lukas", picture=None, admin=admin)))
    assert "(open)" in text and "$1.00 (no budget set)" in text and "$0.50 of $5.00, 10%" in text
    assert "No weekly picture yet" in text
