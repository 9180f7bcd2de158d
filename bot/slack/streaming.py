"""A reply that grows in Slack while the model writes it (issue 8).

In a thread, slack-sdk's `chat_stream` helper (chat.startStream, chat.appendStream, chat.stopStream). Slack's
streams are thread replies, so in a DM's main timeline (where a thread would start a new conversation) the reply
is posted once and then edited with chat.update. The same edit path takes over when the stream API fails or
Slack closes the stream. Pieces are coalesced: the first visible words go out at once, then at most one append
per `flush_interval_seconds`, or one chat.update per `update_interval_seconds` (Slack allows ~50 a minute).

Exactly once: `before_first_post` (marking the question `posting` in the database) is awaited before anything
becomes visible. A `guard` judges every prefix before it is shown; once it refuses, nothing more is shown and
`feed` tells the model's stream to stop. `deliver` makes the message show the final text exactly; `replace` swaps
it for a fallback line. Neither ever leaves a half-written message behind: if editing fails, the message is
deleted and the text posted anew. The finished message names its question in its metadata (chat.stopStream or
chat.update), as part 0; a reply too long for it continues in parts numbered 1, 2, ... after `before_more` has
kept the whole text, so a take-over finds every part and posts only the missing ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.providers_schema import StreamingConfig
from bot.errors import LeaseLost
from bot.slack.client import slack_error
from bot.slack.format_logic import MARKDOWN_TEXT, MARKDOWN_TEXT_LIMIT, render
from bot.slack.replies import post_parts, post_reply, reply_metadata, reply_parts
from bot.slack.sanitise_logic import sanitise_outgoing, sanitise_prefix
from bot.slack.stream_logic import flush_delay, plan_finish, visible_prefix

log = logging.getLogger(__name__)

STREAM, EDIT = "stream", "edit"


def _why(exc: BaseException) -> str:
    return slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__


class SlackReplyStream:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str | None,
        recipient_team_id: str | None,
        recipient_user_id: str | None,
        settings: StreamingConfig,
        max_chars: int,
        before_first_post: Callable[[], Awaitable[None]],
        guard: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        question_id: int | None = None,
        question_ts: str | None = None,
        allowed_user_ids: frozenset[str] = frozenset(),
        before_more: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._recipient = {"recipient_team_id": recipient_team_id, "recipient_user_id": recipient_user_id}
        self._settings = settings
        self._max_chars = min(max_chars, MARKDOWN_TEXT_LIMIT)  # as post_reply splits: a take-over splits alike
        self._before_first_post = before_first_post
        self._before_more = before_more  # keeps a reply's whole text before it continues in further messages
        self.question_id = question_id  # named in the reply's metadata, so an interrupted post can be found
        self.question_ts = question_ts
        self._guard = guard
        self._clock = clock
        self._allowed = allowed_user_ids  # user mentions kept in what is shown (bot.slack.sanitise_logic)
        self.mode = STREAM if thread_ts else EDIT
        self.ts: str | None = None  # the reply's message, once one exists
        self.shown = ""  # what Slack shows (as far as we know)
        self.stopped = False  # the guard refused: nothing more is shown
        self.posting_marked = False
        self._text = ""  # everything the model wrote so far
        self._streamer: Any = None
        self._last_flush: float | None = None
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _metadata(self) -> dict[str, Any] | None:
        """The finished message's metadata: part 0 of the reply to the question."""
        return reply_metadata(question_id=self.question_id, part=0) if self.question_id is not None else None

    def _markdown(self, text: str) -> dict[str, Any]:
        """The one rendering path (sanitised, as markdown_text), for every stream and update call."""
        return render(text, into=MARKDOWN_TEXT, allowed_user_ids=self._allowed)

    # ----- fed by the gateway (a DeltaSink): never blocks, never raises
    def feed(self, piece: str) -> bool:
        if self.stopped or self._closing.is_set():
            return False
        self._text += piece
        if self._task is None:
            self._task = asyncio.create_task(self._flusher(), name="reply-stream")
        self._wake.set()
        return True

    async def _flusher(self) -> None:
        while not self._closing.is_set() and not self.stopped:
            await self._wake.wait()
            self._wake.clear()
            settings = self._settings
            interval = settings.flush_interval_seconds if self.mode == STREAM else settings.update_interval_seconds
            delay = flush_delay(now=self._clock(), last_flush=self._last_flush, interval=interval)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), timeout=delay)
            if self._closing.is_set():
                return
            try:
                await self._flush()
            except LeaseLost:
                self._closing.set()  # another replica answers: show nothing more (deliver raises it again)
                return
            except Exception:
                log.exception("streaming the reply to Slack failed; the final text follows when the model is done")

    async def _flush(self) -> None:
        candidate = sanitise_prefix(visible_prefix(self._text, limit=self._max_chars), allowed_user_ids=self._allowed)
        if len(candidate) <= len(self.shown) or not candidate.strip() or not candidate.startswith(self.shown):
            return  # nothing new, or sanitising rewrote what is shown (the final text puts it right)
        if self._guard is not None and not self._guard(candidate):
            log.warning("the reply failed the output checks while streaming; stopping it")
            self.stopped = True
            return
        await self._mark_posting()
        self._last_flush = self._clock()
        if self.mode == STREAM and self._thread_ts is not None:
            try:
                if self._streamer is None:
                    self._streamer = await self._client.chat_stream(
                        channel=self._channel, thread_ts=self._thread_ts, buffer_size=1, **self._recipient
                    )
                await self._streamer.append(**self._markdown(candidate[len(self.shown) :]))
                self.ts = self.ts or self._streamer.ts
                self.shown = candidate
                return
            except Exception as exc:
                self.ts = self.ts or getattr(self._streamer, "ts", None)
                log.warning("Slack's stream API failed (%s); continuing with chat.update", _why(exc))
                self.mode = EDIT
        if self.ts is None:
            response = await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, metadata=self._metadata(), **self._markdown(candidate)
            )
            self.ts = str(response.get("ts"))
        else:
            await self._client.chat_update(channel=self._channel, ts=self.ts, **self._markdown(candidate))
        self.shown = candidate

    async def _mark_posting(self) -> None:
        if not self.posting_marked:
            await self._before_first_post()
            self.posting_marked = True

    async def settle(self) -> None:
        """Stop flushing (the model is done) and wait for a Slack call in flight."""
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            await self._task

    # ----- the end: the final text, or a fallback line in place of what was shown
    async def deliver(self, final: str) -> list[str]:
        """Make Slack show exactly `final`; returns the timestamps of the message(s). Raises SlackDeliveryError."""
        await self.settle()
        await self._mark_posting()
        final = sanitise_outgoing(final, allowed_user_ids=self._allowed)
        parts = reply_parts(final, max_chars=self._max_chars, allowed_user_ids=self._allowed)
        if self.ts is None:  # nothing visible yet: an ordinary post
            if len(parts) > 1:
                await self._keep(final)
            return await self._post(final)
        plan = plan_finish(final=final, shown=self.shown, streaming=self._stream_open, limit=self._max_chars)
        if plan.more:
            await self._keep(final)
        rewrite = plan.rewrite
        if self._stream_open:
            try:
                markdown = self._markdown(plan.append) if plan.append else {}
                await self._streamer.stop(metadata=self._metadata(), **markdown)
                if plan.append is not None:
                    self.shown = final
            except Exception as exc:
                log.warning("closing the stream failed (%s); setting the final text with chat.update", _why(exc))
                rewrite = rewrite or final
        first = await self._rewrite(rewrite) if rewrite is not None else self.ts
        if not plan.more:
            return [first]
        return await post_parts(  # numbered after the message already shown (part 0): never from 0 again
            self._client,
            channel=self._channel,
            thread_ts=self._thread_ts,
            parts=parts,  # split as a take-over splits the kept text, so it finds and posts the same parts
            posted={0: first},
            question_id=self.question_id,
            question_ts=self.question_ts,
            allowed_user_ids=self._allowed,
        )

    async def _keep(self, final: str) -> None:
        if self._before_more is not None:
            await self._before_more(final)

    async def replace(self, line: str) -> list[str]:
        """Swap whatever was shown for `line` (a fallback): never leave half a reply behind."""
        await self.settle()
        await self._mark_posting()
        if self.ts is None:
            return await self._post(line)
        if self._stream_open:
            try:
                await self._streamer.stop(metadata=self._metadata())
            except Exception as exc:
                log.info("closing the stream before replacing it failed (%s)", _why(exc))
        return [await self._rewrite(line)]

    @property
    def _stream_open(self) -> bool:
        return self.mode == STREAM and self._streamer is not None and self.ts is not None

    async def _rewrite(self, text: str) -> str:
        """chat.update the message to `text`; when that fails, delete it and post `text` anew."""
        assert self.ts is not None
        text = sanitise_outgoing(text, allowed_user_ids=self._allowed)
        try:
            await self._client.chat_update(
                channel=self._channel, ts=self.ts, metadata=self._metadata(), **self._markdown(text)
            )
            self.shown = text
            return self.ts
        except Exception as exc:
            log.warning("chat.update of the streamed reply failed (%s); deleting it and posting again", _why(exc))
        with contextlib.suppress(Exception):
            await self._client.chat_delete(channel=self._channel, ts=self.ts)
        (self.ts, *_rest) = await self._post(text)
        self.shown = text
        return self.ts

    async def _post(self, text: str) -> list[str]:
        return await post_reply(
            self._client,
            channel=self._channel,
            thread_ts=self._thread_ts,
            text=text,
            max_chars=self._max_chars,
            question_id=self.question_id,
            question_ts=self.question_ts,
            allowed_user_ids=self._allowed,
        )
