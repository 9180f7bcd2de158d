"""Per-channel rule state (issue 16): which threads of a disabled channel already got Lukas's note."""

from __future__ import annotations

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from bot.store.models import ChannelNote, utcnow


def claim_note(session: Connection, *, team_id: str, channel_id: str, thread_ts: str) -> bool:
    """True for the first claim of this thread (post the note), False ever after (a unique key decides). Commits."""
    try:
        session.execute(
            insert(ChannelNote).values(team_id=team_id, channel_id=channel_id, thread_ts=thread_ts, created_at=utcnow())
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True
