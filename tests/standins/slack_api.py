"""A Slack Web API stand-in on 127.0.0.1 that records every call and can inject Slack's errors."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.standins import serve_on_loopback, stop

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0TEAM"


@dataclass
class SlackCall:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    ok: bool = True  # False when the stand-in answered with an error (an injected fault)

    @property
    def text(self) -> str:
        """What the message shows: `markdown_text` (standard Markdown) or `text` (mrkdwn)."""
        return str(self.params.get("markdown_text") or self.params.get("text") or "")


@dataclass
class Fault:
    error: str
    times: int
    retry_after: int | None = None
    status: int = 200


class SlackStandIn:
    """Use as `async with SlackStandIn() as slack:`; point the bot at `slack.api_url`."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.calls: list[SlackCall] = []
        self.uploads: dict[str, bytes] = {}
        self.latency = latency
        self.method_latency: dict[str, float] = {}  # method -> its own latency (instead of `latency`)
        self.users: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.ratelimit_probability: dict[str, float] = {}  # method -> chance of a random `ratelimited`
        self._rng = random.Random(11)
        self.responders: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        # channel ID -> Slack error for every call naming that channel (e.g. "not_in_channel")
        self.channel_errors: dict[str, str] = {}
        # channel ID -> thread root ts -> the thread's messages (root first), served by conversations.replies
        self.threads: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._ts = itertools.count(1)
        # Messages posted (chat.postMessage, or streamed: chat.startStream/appendStream/stopStream), as
        # conversations.history/replies return them: ts, text, thread_ts, metadata (only with include_all_metadata).
        # chat.update and chat.stopStream set text and metadata as Slack does; chat.delete removes the message.
        self.messages: dict[str, list[dict[str, Any]]] = {}
        # method -> how many of its next calls succeed but answer 500 (the outcome looks unknown to the caller)
        self.lose_responses: dict[str, int] = {}
        self._file_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ----- what tests read
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def posted_texts(self, channel: str | None = None) -> list[str]:
        """Texts of chat.postMessage calls (including ones the stand-in failed on purpose)."""
        return [
            call.text
            for call in self.calls_to("chat.postMessage")
            if channel is None or call.params.get("channel") == channel
        ]

    def fail(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        times: int = 1,
        retry_after: int | None = None,
        status: int | None = None,
    ) -> None:
        """The next `times` calls to `method` fail with Slack error `error`."""
        if status is None:
            status = 429 if error == "ratelimited" else 200
        self.faults.setdefault(method, []).append(Fault(error, times, retry_after, status))

    def delay(self, method: str, seconds: float) -> None:
        """Calls to `method` answer after `seconds` (0: at once, whatever `latency` says)."""
        self.method_latency[method] = seconds

    def add_user(self, user_id: str, *, display_name: str = "", real_name: str = "", is_bot: bool = False) -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": (display_name or real_name or user_id).lower(),
            "real_name": real_name,
            "is_bot": is_bot,
            "profile": {"display_name": display_name, "real_name": real_name},
        }

    def add_thread_message(
        self,
        channel: str,
        thread_ts: str,
        *,
        text: str = "",
        user: str | None = None,
        ts: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Put a message in a thread (the first one added is the root; its ts is the thread's)."""
        thread = self.threads.setdefault(channel, {}).setdefault(thread_ts, [])
        if ts is None:
            seconds, _, micros = str(thread[-1]["ts"] if thread else thread_ts).partition(".")
            ts = thread_ts if not thread else f"{int(seconds) + 1}.{micros or '000000'}"
        message: dict[str, Any] = {"type": "message", "ts": ts, "text": text, "thread_ts": thread_ts, **extra}
        if user is not None:
            message["user"] = user
        thread.append(message)
        return message

    def _replies(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.replies as Slack pages it: oldest first, `latest`/`oldest` bounds, cursor = an offset."""
        channel, root = str(params.get("channel")), str(params.get("ts"))
        seeded = self.threads.get(channel, {}).get(root)
        posted = [m for m in self.messages.get(channel, []) if m.get("thread_ts") == root]  # Lukas's own replies
        if seeded is None and not posted:
            return {"ok": False, "error": "thread_not_found"}
        thread = sorted([*(seeded or []), *posted], key=lambda message: float(message["ts"]))
        inclusive = str(params.get("inclusive", "")).lower() in ("1", "true")
        latest, oldest = params.get("latest"), params.get("oldest")

        def wanted(message: dict[str, Any]) -> bool:
            ts = float(message["ts"])
            if latest is not None and (ts > float(latest) or (ts == float(latest) and not inclusive)):
                return False
            return not (oldest is not None and (ts < float(oldest) or (ts == float(oldest) and not inclusive)))

        selected = [m for m in thread if wanted(m)]
        limit = int(params.get("limit") or 1000)
        start = int(params.get("cursor") or 0)
        page = selected[start : start + limit]
        more = start + limit < len(selected)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    # ----- lifecycle
    async def __aenter__(self) -> SlackStandIn:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._handle)
        app.router.add_get("/api/{method}", self._handle)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{key}", self._response_url)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await stop(self._runner)

    # ----- request handling
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        body = await request.read()
        if not body:
            return params
        if request.content_type == "application/json":
            params.update(json.loads(body))
        else:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = SlackCall(method, params)
        self.calls.append(call)
        latency = self.method_latency.get(method, self.latency)
        if latency:
            await asyncio.sleep(latency)
        if self._rng.random() < self.ratelimit_probability.get(method, 0.0):
            call.ok = False
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})
        queue = self.faults.get(method)
        if queue:
            call.ok = False
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return web.json_response({"ok": False, "error": fault.error}, status=fault.status, headers=headers)
        channel = params.get("channel") or params.get("channel_id")
        if channel in self.channel_errors:
            return web.json_response({"ok": False, "error": self.channel_errors[channel]})
        if method in self.responders:
            return web.json_response(self.responders[method](params))
        refusal = _markdown_text_refusal(method, params)
        if refusal:
            call.ok = False
            return web.json_response({"ok": False, "error": refusal})
        answer = self._default(method, params, request)
        if self.lose_responses.get(method, 0) > 0:
            self.lose_responses[method] -= 1
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        return web.json_response(answer)

    def _default(self, method: str, params: dict[str, Any], request: web.Request) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "team_id": TEAM_ID,
                "user": "lukas",
                "team": "Research",
                "url": "https://research.example/",
            }
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.startStream"):
            ts = f"{1_900_000_000 + next(self._ts)}.000100"
            if method in ("chat.postMessage", "chat.startStream"):
                self._remember(params, ts)
            return {
                "ok": True,
                "channel": params.get("channel"),
                "ts": ts,
                "message_ts": ts,
                "message": {"text": params.get("text", ""), "ts": ts},
            }
        if method in ("chat.update", "chat.appendStream", "chat.stopStream", "chat.delete"):
            self._change(method, params)
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method == "conversations.history":
            return {"ok": True, "messages": self._history(method, params), "has_more": False}
        if method == "users.info":
            user_id = params.get("user", "")
            user = self.users.get(user_id)
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "conversations.replies":
            return self._replies(params)
        if method == "conversations.open":
            users = str(params.get("users", ""))
            return {"ok": True, "channel": {"id": "D" + users.split(",")[0].lstrip("UW")}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._file_ids):06d}"
            return {"ok": True, "file_id": file_id, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}"}
        if method == "files.completeUploadExternal":
            files = params.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            return {
                "ok": True,
                "files": [
                    {"id": f["id"], "title": f.get("title", "")}  # as Slack does: no permalink (that is files.info)
                    for f in files
                ],
            }
        return {"ok": True}

    def _remember(self, params: dict[str, Any], ts: str) -> None:
        metadata = _json(params.get("metadata"))
        text = params.get("text") or params.get("markdown_text") or _chunk_text(params)
        message = {"type": "message", "ts": ts, "text": text, "bot_id": BOT_ID}
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        if metadata:
            message["metadata"] = metadata
        self.messages.setdefault(str(params.get("channel")), []).append(message)

    def _change(self, method: str, params: dict[str, Any]) -> None:
        """A posted message edited (chat.update), grown (chat.appendStream/stopStream) or deleted (chat.delete)."""
        messages = self.messages.get(str(params.get("channel")), [])
        message = next((m for m in messages if m["ts"] == params.get("ts")), None)
        if message is None:
            return
        if method == "chat.delete":
            messages.remove(message)
            return
        if method == "chat.update":
            message["text"] = params.get("text") or params.get("markdown_text") or ""
        else:
            message["text"] += (params.get("markdown_text") or "") + _chunk_text(params)
        metadata = _json(params.get("metadata"))
        if metadata:
            message["metadata"] = metadata

    def _history(self, method: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """conversations.history: the channel's main timeline (no thread replies), metadata only when asked."""
        with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        oldest = float(params.get("oldest") or 0)
        found = []
        for message in self.messages.get(str(params.get("channel")), []):
            if message.get("thread_ts"):
                continue
            if float(message["ts"]) <= oldest:
                continue
            found.append(message if with_metadata else {k: v for k, v in message.items() if k != "metadata"})
        return found

    def response_url(self, key: str = "cmd") -> str:
        """A slash command's response_url: what the bot posts there is recorded as a "response" call."""
        return f"http://127.0.0.1:{self.port}/response/{key}"

    def responses(self, key: str | None = None) -> list[dict[str, Any]]:
        """Bodies posted to response_url(key) (all keys when None), oldest first."""
        return [
            call.params for call in self.calls_to("response") if key is None or call.params.get("_response_key") == key
        ]

    async def _response_url(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        params["_response_key"] = request.match_info["key"]
        self.calls.append(SlackCall("response", params))
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        reader = await request.post() if request.content_type.startswith("multipart/") else None
        if reader is not None:
            part = next(iter(reader.values()))
            data = part.file.read() if hasattr(part, "file") else str(part).encode()
        else:
            data = await request.read()
        self.uploads[file_id] = data
        self.calls.append(SlackCall("upload", {"file_id": file_id, "bytes": len(data)}))
        return web.Response(text=f"OK - {len(data)}")


def _json(value: Any) -> Any:
    """A structured argument as the Web API takes it: JSON in a form field, or already parsed from a JSON body."""
    return json.loads(value) if isinstance(value, str) and value else value


def _chunk_text(params: dict[str, Any]) -> str:
    """The Markdown a stream call carries in its `chunks` (slack-sdk sends text as markdown_text chunks)."""
    chunks = _json(params.get("chunks")) or []
    return "".join(str(c.get("text") or "") for c in chunks if c.get("type") == "markdown_text")


_MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.startStream"})


def _markdown_text_refusal(method: str, params: dict[str, Any]) -> str | None:
    """Slack's rules for message text: markdown_text alone and at most 12,000 characters; text at most 40,000;
    a message needs one of them (blocks aside)."""
    markdown = params.get("markdown_text")
    if markdown is not None and (params.get("text") or params.get("blocks")):
        return "invalid_arguments"  # markdown_text cannot be combined with text or blocks
    if markdown is not None and len(str(markdown)) > 12_000:
        return "msg_too_long"
    if len(str(params.get("text") or "")) > 40_000:
        return "msg_too_long"
    has_text = markdown or params.get("text") or params.get("blocks")
    if method in _MESSAGE_METHODS and method != "chat.startStream" and not has_text:
        return "no_text"
    return None
