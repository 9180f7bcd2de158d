"""Slack's side of the chat port (bot/chat/ports.py): replies, streams, thinking status and names over the Web API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.ports import PostedReply, ReplyStream, ReplyTarget, ThinkingIndicator
from bot.chat.thread_logic import ThreadMessage
from bot.config.live import LiveConfig
from bot.slack.assistant import ThinkingStatus
from bot.slack.replies import UserNames, find_own_reply, post_reply
from bot.slack.sanitise_logic import sanitise_outgoing
from bot.slack.streaming import SlackReplyStream
from bot.slack.threads import ThreadReader


class SlackPlatform:
    def __init__(
        self, client: AsyncWebClient, *, config: LiveConfig, names: UserNames, threads: ThreadReader | None = None
    ) -> None:
        self._client = client
        self._config = config
        self._names = names
        self._threads = threads

    def make_safe(self, text: str, *, participants: frozenset[str]) -> str:
        return sanitise_outgoing(text, allowed_user_ids=participants)

    async def post_reply(
        self,
        target: ReplyTarget,
        text: str,
        *,
        still_ours: Callable[[], bool] | None = None,
        posted: Mapping[int, str] | None = None,
    ) -> list[str]:
        return await post_reply(
            self._client,
            channel=target.channel,
            thread_ts=target.thread_ts,
            text=text,
            max_chars=self._config.current.slack.max_message_chars,
            question_id=target.question_id,
            question_ts=target.question_ts,
            still_ours=still_ours,
            allowed_user_ids=target.participants,
            posted=posted,
        )

    async def find_reply(self, target: ReplyTarget) -> list[PostedReply]:
        if target.question_id is None:
            return []
        found = await find_own_reply(
            self._client,
            channel=target.channel,
            thread_ts=target.thread_ts,
            after_ts=target.question_ts,
            question_id=target.question_id,
        )
        return [PostedReply(reply.ts, reply.text, reply.part) for reply in found]

    def open_stream(
        self,
        target: ReplyTarget,
        *,
        before_first_post: Callable[[], Awaitable[None]],
        guard: Callable[[str], bool] | None,
        before_more: Callable[[str], Awaitable[None]] | None = None,
    ) -> ReplyStream:
        config = self._config.current
        return SlackReplyStream(
            self._client,
            channel=target.channel,
            thread_ts=target.thread_ts,
            recipient_team_id=target.team_id,
            recipient_user_id=target.user_id,
            settings=config.streaming,
            max_chars=config.slack.max_message_chars,
            before_first_post=before_first_post,
            guard=guard,
            question_id=target.question_id,
            question_ts=target.question_ts,
            allowed_user_ids=target.participants,
            before_more=before_more,
        )

    def show_thinking(self, *, channel: str, thread_ts: str) -> ThinkingIndicator | None:
        settings = self._config.current.assistant
        if not settings.thinking_status:
            return None
        status = ThinkingStatus(self._client, channel_id=channel, thread_ts=thread_ts, settings=settings)
        status.start()
        return status

    async def display_name(self, user_id: str) -> str | None:
        return await self._names.name_of(user_id)

    async def read_thread(
        self, *, channel: str, thread_ts: str, before_ts: str, keep: int
    ) -> list[ThreadMessage] | None:
        if self._threads is None:
            return None
        return await self._threads.read(channel=channel, thread_ts=thread_ts, before_ts=before_ts, keep=keep)
