"""Is this message a request for a picture? Pure, and deliberately an explicit command.

"@Lukas draw yourself at the beach", "@Lukas can you paint me a picture of you in the snow?", `/lukas draw <idea>`.
Chosen over the chat model's tool call because a picture costs real money: an explicit verb at the start is cheap
(no model call, no tokens), deterministic (tested here), works the same with every provider in any chain (not all
of them support tool calls, and streaming replies would have to be held back to see one), and never buys a
picture for a sentence that merely mentions drawing ("I was drawing graphs all day").
"""

from __future__ import annotations

import re

_POLITE = r"(?:(?:hey|hi|ok|okay)[,!]?\s+)?(?:please\s+)?(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?)?"
_VERB = r"(?:draw|paint|sketch|doodle)"
_REQUEST = re.compile(rf"^\s*{_POLITE}{_VERB}\b[\s:,-]*(?P<idea>.*?)[\s?!.]*$", re.IGNORECASE | re.DOTALL)
# "me a picture of", "us a picture of", "a picture of": the idea is what follows.
_PICTURE_OF = re.compile(
    r"^(?:(?:me|us)\s+)?(?:a\s+|an\s+)?(?:(?:little|quick|new)\s+)?(?:picture|drawing|painting|sketch|image)\s+of\s+",
    re.IGNORECASE,
)


def picture_idea(text: str, *, max_chars: int) -> str | None:
    """The idea to draw when `text` (the mention already removed) asks for a picture; None otherwise.

    An empty idea ("@Lukas draw") means "anything": Lukas draws himself. Longer ideas are cut at `max_chars`.
    """
    match = _REQUEST.match(text or "")
    if match is None:
        return None
    idea = _PICTURE_OF.sub("", match["idea"].strip()).strip()
    if idea.lower() in ("me", "us", "something", "anything", "a picture", "a drawing", "something for me"):
        idea = ""
    return idea[:max_chars].strip()


def picture_subject(idea: str) -> str:
    """The idea as the scene of a picture of Lukas: "yourself at the beach" -> "at the beach"."""
    subject = re.sub(r"^(?:yourself|urself|you)\b[\s,]*", "", idea.strip(), flags=re.IGNORECASE)
    return subject.strip()
