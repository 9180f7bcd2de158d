"""A second implementation of the chat port (bot/chat/ports.py): records what would be posted, talks to no one.

It proves the seam (the chat core runs without bot/slack) and serves benchmarks that take Slack out.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from bot.chat.ports import PostedReply, ReplyTarget
from bot.chat.thread_logic import ThreadMessage

_ts = itertools.count(1)


def _next_ts() -> str:
    return f"1900000000.{next(_ts):06d}"


@dataclass
class Posted:
    target: ReplyTarget
    text: str
    ts: str
    streamed: bool = False


class RecordingStream:
    def __init__(
        self,
        platform: RecordingPlatform,
        target: ReplyTarget,
        before_first_post: Callable[[], Awaitable[None]],
        guard: Callable[[str], bool] | None,
    ) -> None:
        self._platform, self._target = platform, target
        self._before_first_post, self._guard = before_first_post, guard
        self.stopped = False
        self.pieces: list[str] = []

    def feed(self, piece: str) -> bool:
        if self.stopped:
            return False
        self.pieces.append(piece)
        if self._guard is not None and not self._guard("".join(self.pieces)):
            self.stopped = True
        return not self.stopped

    async def settle(self) -> None:
        return None

    async def deliver(self, final: str) -> list[str]:
        await self._before_first_post()
        return [self._platform.record(self._target, final, streamed=True)]

    async def replace(self, line: str) -> list[str]:
        return await self.deliver(line)


class RecordingThinking:
    def __init__(self, platform: RecordingPlatform, key: tuple[str, str]) -> None:
        self._platform, self._key = platform, key

    def replying(self) -> None:
        self._platform.thinking_replied += 1

    async def clear(self, *, replied: bool) -> None:
        self._platform.thinking.remove(self._key)  # by the reply (as Slack does) or by a call


@dataclass
class RecordingPlatform:
    names: dict[str, str] = field(default_factory=dict)
    posts: list[Posted] = field(default_factory=list)
    thinking: list[tuple[str, str]] = field(default_factory=list)  # statuses shown and not yet cleared
    thinking_shown: int = 0
    thinking_replied: int = 0  # statuses whose answer started to show
    # (channel, thread_ts) -> the thread's earlier messages; a thread not listed cannot be read (None)
    threads: dict[tuple[str, str], list[ThreadMessage]] = field(default_factory=dict)

    def record(self, target: ReplyTarget, text: str, *, streamed: bool = False) -> str:
        ts = _next_ts()
        self.posts.append(Posted(target, text, ts, streamed))
        return ts

    def make_safe(self, text: str, *, participants: frozenset[str]) -> str:
        return text.replace("<!channel>", "@channel")  # enough to show the core stores what the platform made safe

    async def post_reply(
        self,
        target: ReplyTarget,
        text: str,
        *,
        still_ours: Callable[[], bool] | None = None,
        posted: Mapping[int, str] | None = None,
    ) -> list[str]:
        if posted and 0 in posted:  # every reply here is one part
            return [posted[0]]
        return [self.record(target, text)]

    async def find_reply(self, target: ReplyTarget) -> list[PostedReply]:
        return [
            PostedReply(p.ts, p.text, 0)
            for p in self.posts
            if p.target.question_id is not None and p.target.question_id == target.question_id
        ]

    def open_stream(
        self,
        target: ReplyTarget,
        *,
        before_first_post: Callable[[], Awaitable[None]],
        guard: Callable[[str], bool] | None,
        before_more: Callable[[str], Awaitable[None]] | None = None,
    ) -> RecordingStream:
        return RecordingStream(self, target, before_first_post, guard)

    def show_thinking(self, *, channel: str, thread_ts: str) -> RecordingThinking:
        self.thinking.append((channel, thread_ts))
        self.thinking_shown += 1
        return RecordingThinking(self, (channel, thread_ts))

    async def display_name(self, user_id: str) -> str | None:
        return self.names.get(user_id)

    async def read_thread(
        self, *, channel: str, thread_ts: str, before_ts: str, keep: int
    ) -> list[ThreadMessage] | None:
        thread = self.threads.get((channel, thread_ts))
        if thread is None:
            return None
        earlier = [m for m in thread if float(m.ts) < float(before_ts)]
        return earlier[:1] + earlier[1:][-(keep - 1) :] if keep > 1 else earlier[:1]
