"""The `memory:` block: thread context on a mention, and rolling summaries of what fell out of the window."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MemoryConfig(BaseModel):
    """Defaults are on and cheap: a short summary refreshed every few messages, by the chat chain's first model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True  # rolling summaries of what fell out of the window
    read_threads: bool = True  # read a thread's earlier messages when Lukas is first mentioned in it
    # A name under providers: to write summaries with (tried first; the chat chain follows). None: the chat chain.
    provider: str | None = None
    # Refresh once this many messages have fallen out of the window without being in the summary yet.
    refresh_after_messages: int = Field(default=6, ge=1, le=200)
    # A due refresh waits until its conversation has been quiet this long (and no answer is being worked on), so it
    # never competes with the next message; a conversation that never pauses is summarised after a minute anyway.
    refresh_quiet_seconds: float = Field(default=2.0, ge=0, le=600)
    max_summary_tokens: int = Field(default=250, ge=20, le=4000)
    # How much of the fallen-out text one summary call may read (its own prompt budget).
    max_input_tokens: int = Field(default=6000, ge=500, le=200_000)
    # Thread reading: messages per conversations.replies page, and at most this many pages.
    thread_page_size: int = Field(default=200, ge=1, le=1000)
    thread_max_pages: int = Field(default=10, ge=1, le=100)
