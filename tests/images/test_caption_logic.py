"""Title, alt text and the template caption: always in character, never empty, fitting the occasion."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.images.caption_logic import alt_text_for, caption_request, filename_for, template_caption, title_for
from bot.images.themes_logic import ImagePlan


def plan(**changes: object) -> ImagePlan:
    base = {
        "day": dt.date(2026, 11, 23),
        "season": "autumn",
        "theme": "autumn",
        "occasion": None,
        "prompt": "A friendly stuffed teddy bear mascot named Lukas, ...",
    }
    return ImagePlan(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "start"),
    [
        ({}, "Happy Monday from Lukas! 🐻 This week: autumn leaves and golden light."),
        ({"occasion": "halloween"}, "Happy Halloween from Lukas!"),
        ({"occasion": "thanksgiving"}, "Happy Thanksgiving week from Lukas!"),
        ({"occasion": "holiday", "theme": "winter"}, "Happy holidays from Lukas!"),
        ({"occasion": "lab day", "theme": "science"}, "Happy lab day from Lukas! 🐻 This week: a visit to the lab"),
        (
            {"occasion": "milestone: paper accepted", "milestone": "paper accepted"},
            "Happy Monday from Lukas! 🐻 This week we celebrate paper accepted",
        ),
        ({"theme": "my own theme"}, "Happy Monday from Lukas! 🐻 This week: my own theme."),
    ],
)
def test_template_caption(changes: dict[str, object], start: str) -> None:
    assert template_caption(plan(**changes)).startswith(start)


def test_title_alt_text_and_file_name() -> None:
    halloween = plan(occasion="halloween", occasion_modifier="with friendly jack-o-lanterns", day=dt.date(2026, 10, 26))
    assert title_for(halloween) == "Lukas the Bear, week of 26 October 2026: halloween"
    assert alt_text_for(halloween) == (
        "Illustration of Lukas, the team's stuffed teddy bear mascot, autumn leaves and golden light, "
        "with friendly jack-o-lanterns"
    )
    assert len(alt_text_for(plan(occasion_modifier="x" * 2000))) == 1000
    assert filename_for(slot_key="weekly:2026-11-23T09:00Z", extension="png") == "lukas-weekly-2026-11-23T09-00Z.png"
    assert "milestone: paper accepted" in caption_request(
        plan(occasion="milestone: paper accepted", milestone="paper accepted")
    )
