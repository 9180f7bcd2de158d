"""Which picture a date gets: seasons in both hemispheres, occasions, milestones, and no repeated theme."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from bot.config.images_schema import ImagesConfig, Milestone, Occasion
from bot.config.schema import LukasConfig
from bot.images.themes_logic import (
    basic_prompt_problems,
    in_range,
    milestone_for,
    plan_for_date,
    plan_sequence,
    season_for,
)
from tests.images.conftest import config_dict

D = dt.date


def shipped(**changes: object) -> ImagesConfig:
    images = LukasConfig.model_validate(config_dict()).images
    return images.model_copy(update=changes) if changes else images


MILESTONE = Milestone(name="paper accepted", date=D(2027, 3, 17), days_around=3)


@pytest.mark.parametrize(
    ("day", "hemisphere", "previous", "season", "occasion", "theme"),
    [
        # yearly occasions (north)
        (D(2026, 10, 26), "north", None, "autumn", "halloween", "autumn"),
        (D(2026, 10, 31), "north", "autumn", "autumn", "halloween", "science"),  # never the same theme twice
        (D(2026, 11, 23), "north", "science", "autumn", "thanksgiving", "autumn"),
        (D(2026, 12, 14), "north", "celebration", "winter", "holiday", "winter"),
        (D(2026, 12, 21), "north", None, "winter", "holiday", "winter"),
        # each season on an ordinary week
        (D(2026, 1, 12), "north", None, "winter", None, "winter"),
        (D(2026, 4, 13), "north", None, "spring", None, "spring"),
        (D(2026, 7, 13), "north", None, "summer", None, "summer"),
        (D(2026, 9, 14), "north", None, "autumn", None, "autumn"),
        # the southern hemisphere flips the seasons; occasions follow the date
        (D(2026, 1, 12), "south", None, "summer", None, "summer"),
        (D(2026, 4, 13), "south", None, "autumn", None, "autumn"),
        (D(2026, 7, 13), "south", None, "winter", None, "winter"),
        (D(2026, 9, 14), "south", None, "spring", None, "spring"),
        (D(2026, 12, 14), "south", None, "summer", "holiday", "summer"),
        (D(2026, 10, 26), "south", None, "spring", "halloween", "spring"),
        # a team milestone beats the season, within days_around of its date
        (D(2027, 3, 15), "north", None, "spring", "milestone: paper accepted", "celebration"),
        (D(2027, 3, 20), "north", None, "spring", "milestone: paper accepted", "celebration"),
        (D(2027, 3, 22), "north", None, "spring", None, "spring"),
    ],
)
def test_plan_for_a_table_of_dates(
    day: dt.date, hemisphere: str, previous: str | None, season: str, occasion: str | None, theme: str
) -> None:
    config = shipped(hemisphere=hemisphere, milestones=[MILESTONE])
    plan = plan_for_date(day=day, config=config, previous_theme=previous)
    assert (plan.season, plan.occasion, plan.theme) == (season, occasion, theme)
    assert plan.prompt.startswith("A friendly stuffed teddy bear mascot named Lukas, " + config.themes[theme])
    assert plan.prompt.endswith(
        "whimsical illustration style, warm and inviting atmosphere, family-friendly, high quality digital art"
    )


def test_occasion_and_milestone_modifiers_are_in_the_prompt() -> None:
    config = shipped(milestones=[MILESTONE])
    halloween = plan_for_date(day=D(2026, 10, 26), config=config, previous_theme=None)
    assert "with friendly jack-o-lanterns, autumn decorations" in halloween.prompt
    holiday = plan_for_date(day=D(2026, 12, 21), config=config, previous_theme=None)
    assert "with wrapped presents and holiday lights" in holiday.prompt
    milestone = plan_for_date(day=D(2027, 3, 15), config=config, previous_theme=None)
    assert "celebrating the team milestone: paper accepted" in milestone.prompt
    assert "giving a thumbs up, achievement celebration" in milestone.prompt
    assert milestone.milestone == "paper accepted"
    # the seed's exact autumn prompt
    autumn = plan_for_date(day=D(2026, 9, 14), config=config, previous_theme=None)
    assert autumn.prompt == (
        "A friendly stuffed teddy bear mascot named Lukas, surrounded by colorful fall leaves, warm golden lighting, "
        "whimsical illustration style, warm and inviting atmosphere, family-friendly, high quality digital art"
    )


def test_a_forced_occasion_theme_is_used() -> None:
    config = shipped(
        occasions=[
            Occasion(name="lab day", start="05-04", end="05-10", modifier="wearing safety goggles", theme="science")
        ]
    )
    plan = plan_for_date(day=D(2026, 5, 4), config=config, previous_theme="spring")
    assert (plan.occasion, plan.theme) == ("lab day", "science")
    assert plan_for_date(day=D(2026, 5, 4), config=config, previous_theme="science").theme == "spring"


@pytest.mark.parametrize("hemisphere", ["north", "south"])
def test_two_years_of_weeks_never_repeat_a_theme_and_use_every_theme(hemisphere: str) -> None:
    config = shipped(hemisphere=hemisphere, milestones=[MILESTONE])
    mondays = [D(2026, 1, 5) + dt.timedelta(weeks=n) for n in range(104)]
    plans = plan_sequence(days=mondays, config=config)
    for before, after in itertools.pairwise(plans):
        assert before.theme != after.theme, (before.day, after.day, after.theme)
    assert {plan.theme for plan in plans} == set(config.themes)
    assert {plan.occasion for plan in plans} >= {
        None,
        "halloween",
        "thanksgiving",
        "holiday",
        "milestone: paper accepted",
    }


def test_seasons_by_month() -> None:
    north = [season_for(day=D(2026, month, 1), hemisphere="north") for month in range(1, 13)]
    assert north == ["winter"] * 2 + ["spring"] * 3 + ["summer"] * 3 + ["autumn"] * 3 + ["winter"]
    south = [season_for(day=D(2026, month, 1), hemisphere="south") for month in range(1, 13)]
    assert south == ["summer"] * 2 + ["autumn"] * 3 + ["winter"] * 3 + ["spring"] * 3 + ["summer"]


def test_date_ranges_include_both_ends_and_may_wrap_the_new_year() -> None:
    assert in_range(day=D(2026, 10, 24), start="10-24", end="10-31")
    assert in_range(day=D(2026, 10, 31), start="10-24", end="10-31")
    assert not in_range(day=D(2026, 11, 1), start="10-24", end="10-31")
    assert in_range(day=D(2026, 12, 30), start="12-28", end="01-03")
    assert in_range(day=D(2027, 1, 3), start="12-28", end="01-03")
    assert not in_range(day=D(2027, 1, 4), start="12-28", end="01-03")
    assert in_range(day=D(2028, 2, 29), start="02-29", end="02-29")


def test_the_nearest_milestone_wins() -> None:
    near = Milestone(name="near", date=D(2027, 3, 16), days_around=5)
    far = Milestone(name="far", date=D(2027, 3, 12), days_around=5)
    assert milestone_for(day=D(2027, 3, 15), milestones=[far, near]) == near
    assert milestone_for(day=D(2027, 3, 30), milestones=[far, near]) is None


def test_fallback_prompt_check() -> None:
    assert basic_prompt_problems(prompt="a bear with a kraken", banned_terms=["Kraken"]) == [
        "the prompt contains a banned term"
    ]
    assert basic_prompt_problems(prompt="a bear with a krakenette", banned_terms=["kraken"]) == []
    assert basic_prompt_problems(prompt="x" * 4001, banned_terms=[])[0].startswith("the prompt is 4001 characters")
