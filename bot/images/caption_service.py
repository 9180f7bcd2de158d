"""The weekly picture's caption, written by Lukas himself through the chat gateway (persona, chain, checks)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import insert

from bot.chat.ledger_logic import ledger_rows
from bot.images.caption_logic import caption_request
from bot.images.job import CaptionWriter
from bot.images.themes_logic import ImagePlan
from bot.store.models import LLMCall, utcnow

log = logging.getLogger(__name__)


def gateway_caption_writer(services: Any) -> CaptionWriter:
    """Ask the chat model for a caption; None (the job then uses its template) when it cannot or must not."""

    async def write(plan: ImagePlan) -> str | None:
        config = services.config.current
        messages = [
            {"role": "system", "content": config.persona.system_prompt},
            {"role": "user", "content": caption_request(plan)},
        ]
        result = await services.gateway.complete(messages)
        rows = ledger_rows(result=result, conversation_id=None, purpose="caption")
        if rows:
            try:
                async with services.sessions() as session:
                    await session.execute(insert(LLMCall), [{**row, "created_at": utcnow()} for row in rows])
                    await session.commit()
            except Exception as exc:  # the ledger must not cost the picture its caption
                log.error("could not record the caption's LLM call: %s", type(exc).__name__)
        if not result.ok or not (result.text or "").strip():
            return None
        checked = services.contracts().check_reply(result.text or "")
        if not checked.ok:
            log.warning("the caption failed the reply checks (%s); using the template", "; ".join(checked.reasons))
            return None
        return str(checked.value).strip()

    return write
