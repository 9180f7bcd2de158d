"""The images: section refuses admin mistakes with a message naming the field (the last good config stays)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bot.config.loader import parse_config
from bot.errors import ConfigError
from tests.helpers import SHIPPED_CONFIG
from tests.images.conftest import config_dict


def problems_for(images: dict[str, Any]) -> list[str]:
    raw = config_dict()
    raw["images"] = {**raw["images"], **images}  # replace whole settings (themes without the seasons, ...)
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(raw), env={})
    return caught.value.problems


def test_shipped_config_is_valid_and_uses_a_current_model() -> None:
    config = parse_config(SHIPPED_CONFIG.read_text(), env={})
    images = config.images
    assert images.model == "gpt-image-2"
    assert (images.model, images.size, images.quality) in {(p.model, p.size, p.quality) for p in images.prices}
    assert images.schedule.cron == "0 10 * * mon"
    assert set(images.themes) >= {"autumn", "winter", "spring", "summer", "science", "celebration"}
    assert [o.name for o in images.occasions] == ["halloween", "thanksgiving", "holiday"]


def test_every_line_of_the_images_section_is_explained() -> None:
    lines = SHIPPED_CONFIG.read_text().splitlines()
    start = lines.index("images:")
    end = next(i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" "))
    section = lines[start + 1 : end]
    for index, line in enumerate(section):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        explained = (
            "#" in line
            or any(section[j].strip().startswith("#") for j in range(max(0, index - 3), index))
            or line.startswith("    ")
        )  # items of a commented block
        assert explained, f"config.yml images line without a comment: {line!r}"


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        ({"prices": [{"model": "gpt-image-2", "size": "1024x1024", "quality": "medium"}]}, "images.prices[0].usd"),
        (
            {"prices": [{"model": "gpt-image-2", "size": "1024x1024", "quality": "medium", "usd": -1}]},
            "images.prices[0].usd",
        ),
        (
            {"prices": [{"model": "m", "size": "1024x1024", "quality": "low", "usd": 1, "currency": "eur"}]},
            "unknown setting",
        ),
        (
            {
                "prices": [
                    {"model": "m", "size": "1024x1024", "quality": "low", "usd": 1},
                    {"model": "m", "size": "1024x1024", "quality": "low", "usd": 2},
                ]
            },
            "prices lists m 1024x1024 low twice",
        ),
        ({"prices": "free"}, "images.prices"),
        ({"quality": "ultra"}, "images.quality"),
        ({"size": "big"}, "images.size"),
        ({"channels": ["#general"]}, "not a Slack channel ID"),
        ({"schedule": {"cron": "every monday"}}, "images.schedule.cron"),
        ({"schedule": {"timezone": "Mars/Olympus"}}, "images.schedule.timezone"),
        ({"hemisphere": "east"}, "images.hemisphere"),
        ({"themes": {"science": "in a lab"}}, "must describe every season"),
        ({"occasions": [{"name": "x", "start": "02-30", "end": "03-01", "modifier": "m"}]}, "not a real day"),
        (
            {"occasions": [{"name": "x", "start": "10-01", "end": "10-02", "modifier": "m", "theme": "pirates"}]},
            "unknown theme 'pirates'",
        ),
        ({"milestones": [{"name": "launch", "date": "someday"}]}, "images.milestones[0].date"),
        ({"monthly_budget_usd": -5}, "images.monthly_budget_usd"),
    ],
)
def test_bad_images_settings_are_refused(images: dict[str, Any], expected: str) -> None:
    problems = problems_for(images)
    assert any(expected in problem for problem in problems), problems
