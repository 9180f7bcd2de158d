"""What the chat core needs from the chat platform it serves. The core owns this interface; bot/slack implements
it (bot/slack/platform.py) and bot/runtime.py wires the two, so nothing in bot/chat knows it is talking to Slack.

Delivery failures raise bot.errors.SlackDeliveryError (the platform could not take the reply).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.chat.thread_logic import ThreadMessage


@dataclass(frozen=True)
class ReplyTarget:
    """Where a reply goes: a channel, a thread in it (None: the channel's main timeline), who asked, and the people
    taking part (the only ones a reply may still mention)."""

    channel: str
    thread_ts: str | None
    team_id: str | None = None
    user_id: str | None = None
    participants: frozenset[str] = frozenset()
    question_id: int | None = None  # the question answered: named on the reply, so it can be found again
    question_ts: str | None = None  # the question's own timestamp (replies come after it)


@dataclass(frozen=True)
class PostedReply:
    """A reply already on the platform, found by the question it names."""

    ts: str
    text: str
    part: int


class ReplyStream(Protocol):
    """A reply that grows while the model writes it."""

    stopped: bool  # the guard refused a prefix: nothing more is shown

    def feed(self, piece: str) -> bool:
        """Take the model's next piece (never blocks, never raises); False asks the model stream to stop."""
        ...

    async def settle(self) -> None:
        """Wait until everything fed so far has been shown (or given up on)."""
        ...

    async def deliver(self, final: str) -> list[str]:
        """Make the platform show exactly `final`; returns the message timestamps."""
        ...

    async def replace(self, line: str) -> list[str]:
        """Replace whatever was shown with `line` (a fallback line); returns the message timestamps."""
        ...


class ThinkingIndicator(Protocol):
    def replying(self) -> None:
        """The reply is about to show: a status already set by then is cleared by the platform itself."""
        ...

    async def clear(self, *, replied: bool) -> None:
        """After the answer (`replied`: something was posted): clear what the platform does not clear by itself."""
        ...


class ChatPlatform(Protocol):
    def make_safe(self, text: str, *, participants: frozenset[str]) -> str:
        """The reply as the platform will show it: nothing in it may notify everyone or hide where a link goes."""
        ...

    async def post_reply(
        self,
        target: ReplyTarget,
        text: str,
        *,
        still_ours: Callable[[], bool] | None = None,
        posted: Mapping[int, str] | None = None,
    ) -> list[str]:
        """Post a whole reply (split when long); returns the timestamp of each part. An unknown outcome (timeout,
        5xx) is looked up before posting again; `still_ours` is asked before each part (False: LeaseLost). Parts in
        `posted` (part number -> timestamp, as find_reply reports them) are not posted again. Refused after some
        parts landed: PartlyDelivered (what the platform holds)."""
        ...

    async def find_reply(self, target: ReplyTarget) -> list[PostedReply]:
        """Replies to `target.question_id` already on the platform, in part order (empty: none)."""
        ...

    def open_stream(
        self,
        target: ReplyTarget,
        *,
        before_first_post: Callable[[], Awaitable[None]],
        guard: Callable[[str], bool] | None,
        before_more: Callable[[str], Awaitable[None]] | None = None,
    ) -> ReplyStream:
        """A streamed reply; `before_first_post` runs before anything becomes visible, `guard` judges each prefix,
        `before_more` gets the final text before a reply too long for one message continues in further ones."""
        ...

    def show_thinking(self, *, channel: str, thread_ts: str) -> ThinkingIndicator | None:
        """Show "Lukas is thinking…" (None when the platform or the config has no such thing)."""
        ...

    async def display_name(self, user_id: str) -> str | None: ...

    async def read_thread(
        self, *, channel: str, thread_ts: str, before_ts: str, keep: int
    ) -> list[ThreadMessage] | None:
        """A thread's root and up to `keep - 1` of its newest messages before `before_ts`, oldest first, authors
        named; None when the thread cannot be read (private, not a member, missing scope)."""
        ...
