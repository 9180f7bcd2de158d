"""Nothing accepted is ever forgotten: take-overs of expired leases (a `posting` one is first looked for in
Slack, and a reply found there only in part is finished), the sweeper that finds them on any replica, and a
shutdown that hands unfinished answers back."""

from __future__ import annotations

import asyncio
import logging

from bot.chat.intake import ChatIntake
from bot.chat.pipeline_base import reply_target
from bot.chat.reply_logic import join_parts
from bot.errors import LeaseLost, PartlyDelivered, SlackDeliveryError
from bot.store import chat_repo, leases
from bot.store.leases import Lease

log = logging.getLogger(__name__)


class ChatRecovery(ChatIntake):
    async def shutdown(self, *, grace: float, posting_grace: float) -> list[int]:
        """SIGTERM: take nothing new, let answers finish for `grace` seconds, then hand the unfinished ones back
        (their leases expire at once, so any replica, or the next start, answers them with the model). Answers
        already posting are never cut off: they get up to `posting_grace` more to finish. Returns the ids handed
        back."""
        self._taking = False
        pending = [*self._tasks.values(), *self._side_tasks]
        if pending:
            await asyncio.wait(pending, timeout=grace)
        unfinished = {i: t for i, t in self._tasks.items() if i not in self._posting}
        handing = {i: lease.epoch for i in unfinished if (lease := self.keeper.lease(i)) is not None}
        for task in unfinished.values():
            task.cancel()
        await asyncio.gather(*unfinished.values(), return_exceptions=True)
        posting = list(self._tasks.values())
        if posting:
            await asyncio.wait(posting, timeout=posting_grace)
        released = await self._db(
            lambda s: leases.release(s, owner=self.instance_id, held=handing), within=min(self._answer_db_retry, 5)
        )
        if released:
            log.info("handed %d unfinished answer(s) back for another Lukas: %s", len(released), released)
        return released

    async def stuck_counts(self) -> dict[str, int]:
        """Questions stuck in `posting` past the grace (a post that may or may not be in Slack) and `failed` ones."""
        grace = self._config.current.replicas.posting_grace_seconds
        return await self._store.run(lambda s: leases.stuck_counts(s, posting_grace=grace))

    async def drain(self, timeout: float) -> None:
        """Shutdown with the default posting grace (kept for callers of the old name)."""
        await self.shutdown(grace=timeout, posting_grace=self._config.current.replicas.posting_grace_seconds)

    async def _take_over(self, message_id: int, foreign_now: bool) -> Lease | None:
        replicas = self._config.current.replicas
        asked_at = self.keeper.now()
        lease = await self._db(
            lambda s: leases.take_over(
                s,
                message_id,
                owner=self.instance_id,
                ttl=replicas.lease_seconds,
                posting_grace=replicas.posting_grace_seconds,
                foreign_before=self._started_at if foreign_now else None,
            ),
            within=self._answer_db_retry,
        )
        if lease is not None:
            self.keeper.hold(lease, asked_at=asked_at)
            self._on_event("lease_taken_over")
            log.info("took over message %s (%s, lease epoch %d)", message_id, lease.state, lease.epoch)
        return lease

    async def _recover_posting(self, claimed: chat_repo.ClaimedMessage, lease: Lease, people: frozenset[str]) -> bool:
        """A worker vanished while posting: if its reply is in Slack, post the parts Slack lacks (when the whole
        text was kept) and record it; otherwise answer again (False)."""
        target = reply_target(claimed, people)
        found = await self._platform.find_reply(target)
        if not found:
            if not await self._db(
                lambda s: leases.reopen(s, lease, owner=self.instance_id), within=self._answer_db_retry
            ):
                raise LeaseLost(f"lease on message {claimed.id} lost before answering it again")
            log.info("message %s: no reply in Slack after an interrupted post; answering it again", claimed.id)
            return False
        text, timestamps = join_parts([reply.text for reply in found]), [reply.ts for reply in found]
        if claimed.reply_text is not None:
            try:
                timestamps = await self._platform.post_reply(
                    target,
                    claimed.reply_text,
                    still_ours=lambda: self.keeper.owns(claimed.id),
                    posted={reply.part: reply.ts for reply in found},
                )
                text = claimed.reply_text
            except PartlyDelivered as exc:
                log.error("message %s: could not post all of the rest of its reply: %s", claimed.id, exc)
                text, timestamps = exc.text, exc.timestamps
            except SlackDeliveryError as exc:
                log.error("message %s: could not post the rest of its reply: %s", claimed.id, exc)
        if len(timestamps) > len(found):
            log.info("message %s: posted the %d missing part(s) of its reply", claimed.id, len(timestamps) - len(found))
        else:
            log.info("message %s: its reply is already in Slack; recording it, not posting again", claimed.id)
        recorded = await self._db(
            lambda s: chat_repo.record_reply(
                s,
                lease=lease,
                owner=self.instance_id,
                question_id=claimed.id,
                conversation=claimed.conversation,
                sender="bot",
                text=text,
                slack_ts=timestamps[0],
                token_count=self._prompting.count(text),
                llm_call=None,
            ),
            within=self._answer_db_retry,
        )
        if not recorded:
            raise LeaseLost(f"lease on message {claimed.id} lost while recording a recovered reply")
        return True

    # ----- the sweeper: nothing accepted is ever forgotten (restarts, crashes, database hiccups)
    async def sweep_once(self) -> int:
        """Take over every message whose lease ran out (on any replica). Returns how many were started."""
        if not self._taking:
            return 0
        replicas = self._config.current.replicas
        foreign_now = self._foreign_now
        ids = await self._db(
            lambda s: leases.claimable(
                s,
                owner=self.instance_id,
                posting_grace=replicas.posting_grace_seconds,
                foreign_before=self._started_at if foreign_now else None,
            ),
            within=self._answer_db_retry,
        )
        self._foreign_now = False
        started = sum(1 for i in ids if self._taking and self.schedule(i, takeover=True, foreign_now=foreign_now))
        if started:
            log.info("sweeper found %d answer(s) whose lease ran out", started)
        return started

    async def run_sweeper(self) -> None:
        while True:
            interval = self._config.current.replicas.sweep_seconds
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweeper pass failed; trying again in %.1fs", interval)
            await asyncio.sleep(interval)
