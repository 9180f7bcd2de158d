"""Which picture a date gets: season, occasion or team milestone, theme, and the prompt (seed 002). Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.config.images_schema import SEASONS, ImagesConfig, Milestone, Occasion

_NORTH_SEASON_BY_MONTH = {
    12: "winter",
    1: "winter",
    2: "winter",
    3: "spring",
    4: "spring",
    5: "spring",
    6: "summer",
    7: "summer",
    8: "summer",
    9: "autumn",
    10: "autumn",
    11: "autumn",
}
_OPPOSITE = {"winter": "summer", "summer": "winter", "spring": "autumn", "autumn": "spring"}
MILESTONE_THEME = "celebration"


@dataclass(frozen=True)
class ImagePlan:
    """What one run will ask for. `occasion` is None on an ordinary week."""

    day: dt.date
    season: str
    theme: str
    occasion: str | None
    prompt: str
    occasion_modifier: str | None = None
    milestone: str | None = None


def season_for(*, day: dt.date, hemisphere: str) -> str:
    """Meteorological seasons: north Dec-Feb winter, Mar-May spring, Jun-Aug summer, Sep-Nov autumn."""
    season = _NORTH_SEASON_BY_MONTH[day.month]
    return _OPPOSITE[season] if hemisphere == "south" else season


def _month_day(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)


def in_range(*, day: dt.date, start: str, end: str) -> bool:
    """MM-DD ranges, inclusive; a range whose end is before its start wraps the new year."""
    key, first, last = (day.month, day.day), _month_day(start), _month_day(end)
    if first <= last:
        return first <= key <= last
    return key >= first or key <= last


def occasion_for(*, day: dt.date, occasions: list[Occasion]) -> Occasion | None:
    """The first listed occasion whose date range holds the day."""
    for occasion in occasions:
        if in_range(day=day, start=occasion.start, end=occasion.end):
            return occasion
    return None


def milestone_for(*, day: dt.date, milestones: list[Milestone]) -> Milestone | None:
    """The milestone nearest to the day among those within their `days_around`; the first listed wins ties."""
    best: tuple[int, Milestone] | None = None
    for milestone in milestones:
        distance = abs((day - milestone.date).days)
        if distance <= milestone.days_around and (best is None or distance < best[0]):
            best = (distance, milestone)
    return best[1] if best else None


def _rotation(*, day: dt.date, themes: dict[str, str]) -> list[str]:
    """The non-season themes, starting at a place that moves with the ISO week so they all get a turn."""
    others = [name for name in themes if name not in SEASONS]
    if not others:
        return []
    start = day.isocalendar().week % len(others)
    return others[start:] + others[:start]


def choose_theme(*, preferred: list[str], day: dt.date, themes: dict[str, str], previous_theme: str | None) -> str:
    """The first preferred theme (then the rotation) that differs from last time's."""
    candidates: list[str] = []
    for name in [*preferred, *_rotation(day=day, themes=themes)]:
        if name in themes and name not in candidates:
            candidates.append(name)
    for name in candidates:
        if name != previous_theme:
            return name
    return candidates[0]


def build_prompt(*, config: ImagesConfig, theme: str, extras: list[str]) -> str:
    parts = [config.base_prompt.strip(), config.themes[theme].strip()]
    parts += [extra.strip() for extra in extras if extra and extra.strip()]
    parts += [modifier.strip() for modifier in config.style_modifiers if modifier.strip()]
    return ", ".join(parts)


def plan_for_date(*, day: dt.date, config: ImagesConfig, previous_theme: str | None) -> ImagePlan:
    """The theme, occasion and prompt for `day`. A team milestone beats a yearly occasion."""
    season = season_for(day=day, hemisphere=config.hemisphere)
    milestone = milestone_for(day=day, milestones=config.milestones)
    if milestone is not None:
        theme = choose_theme(
            preferred=[MILESTONE_THEME, season], day=day, themes=config.themes, previous_theme=previous_theme
        )
        extras = [f"celebrating the team milestone: {milestone.name}", milestone.modifier]
        prompt = build_prompt(config=config, theme=theme, extras=extras)
        occasion_name = f"milestone: {milestone.name}"[:64]
        return ImagePlan(day, season, theme, occasion_name, prompt, milestone.modifier, milestone.name)
    occasion = occasion_for(day=day, occasions=config.occasions)
    if occasion is not None:
        preferred = [occasion.theme or season, season]
        theme = choose_theme(preferred=preferred, day=day, themes=config.themes, previous_theme=previous_theme)
        prompt = build_prompt(config=config, theme=theme, extras=[occasion.modifier])
        return ImagePlan(day, season, theme, occasion.name, prompt, occasion.modifier)
    theme = choose_theme(preferred=[season], day=day, themes=config.themes, previous_theme=previous_theme)
    return ImagePlan(day, season, theme, None, build_prompt(config=config, theme=theme, extras=[]))


def plan_sequence(*, days: list[dt.date], config: ImagesConfig, previous_theme: str | None = None) -> list[ImagePlan]:
    """Plans for consecutive slots, each avoiding the theme before it (for dry runs and previews)."""
    plans = []
    for day in days:
        plan = plan_for_date(day=day, config=config, previous_theme=previous_theme)
        plans.append(plan)
        previous_theme = plan.theme
    return plans


def basic_prompt_problems(*, prompt: str, banned_terms: list[str], max_chars: int = 4000) -> list[str]:
    """A last-resort check used only when no contract engine is wired: length and plain banned words."""
    problems = []
    if not prompt.strip():
        problems.append("the prompt is empty")
    if len(prompt) > max_chars:
        problems.append(f"the prompt is {len(prompt)} characters, over the {max_chars} limit")
    words = {word.strip(".,;:!?\"'()").casefold() for word in prompt.split()}
    lowered = prompt.casefold()
    for term in banned_terms:
        folded = term.casefold().strip()
        if folded and (folded in words or (" " in folded and folded in lowered)):
            problems.append("the prompt contains a banned term")
            break
    return problems
