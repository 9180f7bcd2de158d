"""Words around the picture: the Slack title, alt text, file name and the template caption. Pure."""

from __future__ import annotations

from bot.images.themes_logic import ImagePlan

_OCCASION_LINES = {
    "halloween": "Happy Halloween from Lukas! 🎃🐻 I found the friendliest jack-o-lanterns in the woods.",
    "thanksgiving": "Happy Thanksgiving week from Lukas! 🐻 I'm grateful for this team (and for pie).",
    "holiday": "Happy holidays from Lukas! 🎁🐻 Thank you all for a wonderful year together.",
}
_THEME_LINES = {
    "autumn": "autumn leaves and golden light",
    "winter": "snow, a cozy scarf and hot cocoa weather",
    "spring": "blooming flowers everywhere",
    "summer": "sunshine and a picnic (honey sandwiches, of course)",
    "science": "a visit to the lab, among the beakers and books",
    "celebration": "balloons and confetti",
}


def _describe_theme(theme: str) -> str:
    return _THEME_LINES.get(theme, theme.replace("_", " "))


def template_caption(plan: ImagePlan) -> str:
    """The caption used when no model-written caption is available. Always in character, never empty."""
    weekday = plan.day.strftime("%A")
    if plan.milestone:
        return (
            f"Happy {weekday} from Lukas! 🐻 This week we celebrate {plan.milestone}: congratulations, team! "
            f"Here I am with {_describe_theme(plan.theme)}."
        )
    if plan.occasion and plan.occasion in _OCCASION_LINES:
        return f"{_OCCASION_LINES[plan.occasion]} This week: {_describe_theme(plan.theme)}."
    if plan.occasion:
        return f"Happy {plan.occasion} from Lukas! 🐻 This week: {_describe_theme(plan.theme)}."
    return f"Happy {weekday} from Lukas! 🐻 This week: {_describe_theme(plan.theme)}. Have a great week, everyone!"


def title_for(plan: ImagePlan) -> str:
    what = plan.milestone or plan.occasion or plan.theme
    return f"Lukas the Bear, week of {plan.day:%d %B %Y}: {what}"


def alt_text_for(plan: ImagePlan) -> str:
    """Alt text (Slack allows 1,000 characters): what the picture shows, without the style words."""
    text = f"Illustration of Lukas, the team's stuffed teddy bear mascot, {_describe_theme(plan.theme)}"
    if plan.occasion_modifier:
        text += f", {plan.occasion_modifier}"
    if plan.milestone:
        text += f", celebrating {plan.milestone}"
    return text[:1000]


def filename_for(*, slot_key: str, extension: str) -> str:
    safe = "".join(char if char.isalnum() else "-" for char in slot_key).strip("-")
    return f"lukas-{safe}.{extension}"


def caption_request(plan: ImagePlan) -> str:
    """The user turn to send after the persona system prompt when asking the chat model for a caption."""
    what = f"theme: {plan.theme}"
    if plan.milestone:
        what += f"; the team is celebrating a milestone: {plan.milestone}"
    elif plan.occasion:
        what += f"; occasion: {plan.occasion}"
    return (
        f"It is {plan.day:%A %d %B %Y} and you are posting this week's picture of yourself to the team channel "
        f"({what}; season: {plan.season}). Write the caption: one or two warm, cheerful sentences in your own "
        "voice, at most one emoji, no hashtags, no quotation marks."
    )
