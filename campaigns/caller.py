"""One batch job's provider calls: each waits for its slot, is taken off the not-yet-called list, and goes.

``BatchSender`` claims rows and hands each claimed send to a pool: threads running
``Caller.send`` (``campaigns.sendpool``), or coroutines running ``Caller.send_async`` on
one event loop for a provider that can send asynchronously (``campaigns.asyncpool``;
the Twilio messaging channels). Both do the same, in the same order:

1. wait for the send's slot of the shared pace; a send woken too late for it (a busy
   machine) takes the next free slot instead, so it cannot crowd the sends after it;
2. take the row off the not-yet-called list (``campaigns.uncalled``) — only then may it
   be sent; a paused or aborted campaign, or a row no longer ours, is ``not_sent``;
3. judged late again right before the call (held up meanwhile): listed again, new slot;
4. call the provider and read what became of the send (``Outcome``).

On the event loop the rows are taken off the list together: every send whose slot came
in one turn of the loop shares one Redis round trip.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import select

from bot.channels import SendError
from bot.channels.base import Sent
from bot.db import Database
from bot.settings import Settings
from campaigns import call_dispatch, ratelimit
from campaigns.claims import Claimed, Outcome, Step
from campaigns.models import Campaign, Recipient
from campaigns.uncalled import Uncalled

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
_GO = "go"
_AGAIN = "again"


class Caller:
    """The provider calls of one batch job (see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        limiter: ratelimit.Limiter,
        paces: list[ratelimit.Pace],
        uncalled: Uncalled,
        still_active: Callable[[], bool],
        slots: call_dispatch.LiveCalls | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.limiter, self.paces = limiter, paces
        self.uncalled = uncalled
        self.still_active = still_active
        self.slots = slots  # a call campaign's live calls: its sends place calls
        self.late_after_s = ratelimit.tolerance(paces)
        self.held_after_s = ratelimit.tolerance(paces, share=ratelimit.HELD_SHARE)
        self.late = 0  # sends that woke too late for their slot and took a new one
        self._late_lock = threading.Lock()
        self._asks: list[tuple[str, asyncio.Future[bool]]] = []  # claims to take off the list, this loop turn

    def send(self, provider: Any, campaign: Campaign, step: Step, item: Claimed, moment: float) -> Outcome:
        """One send on a thread of its own (a call campaign's call, or a provider without ``send_async``)."""
        message = None if self.slots is not None else step.outbound(item, self.settings.public_base_url)
        while True:
            ratelimit.wait_until(moment)
            if time.time() - moment > self.late_after_s:
                moment = self._late()
                if moment is None:
                    return Outcome(item, "not_sent")
                continue
            taken = self.still_active() and self.uncalled.take_or_refuse(item.listed)
            verdict = self._verdict(item, moment, taken)
            if verdict is _GO:
                break
            if isinstance(verdict, Outcome):
                return verdict
            moment = self._late()
            if moment is None:
                return Outcome(item, "not_sent")
        try:
            if self.slots is not None:
                return call_dispatch.place(provider, self.settings, campaign, step.sender, item, self.slots)
            assert message is not None
            sent = provider.send(message)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the send's outcome
            return self._failed(campaign, item, exc, self._attempts(item) if _retryable(exc) else 0)
        return _sent(item, sent)

    async def send_async(self, provider: Any, campaign: Campaign, step: Step, item: Claimed, moment: float) -> Outcome:
        """``send`` as a coroutine, through ``provider.send_async``.

        What may block on Redis or the database off the common path (a new slot, listing a
        row again, counting attempts) runs in a thread: the loop carries every other send.
        """
        message = step.outbound(item, self.settings.public_base_url)
        while True:
            await asyncio.sleep(max(0.0, moment - time.time()))
            if time.time() - moment > self.late_after_s:
                moment = await asyncio.to_thread(self._late)
                if moment is None:
                    return Outcome(item, "not_sent")
                continue
            taken = self.still_active() and await self._take(item.listed)
            if taken and time.time() - moment <= self.held_after_s:
                break
            verdict = await asyncio.to_thread(self._verdict, item, moment, taken)
            if verdict is _GO:
                break
            if isinstance(verdict, Outcome):
                return verdict
            moment = await asyncio.to_thread(self._late)
            if moment is None:
                return Outcome(item, "not_sent")
        try:
            sent = await provider.send_async(message)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the send's outcome
            attempts = await asyncio.to_thread(self._attempts, item) if _retryable(exc) else 0
            return self._failed(campaign, item, exc, attempts)
        return _sent(item, sent)

    def _verdict(self, item: Claimed, moment: float, taken: bool) -> str | Outcome:
        """What a send does once it asked for its row: go, wait for a new slot, or stop unsent."""
        if not taken:
            # Paused or aborted; or the row is no longer ours to send (the reconciler
            # released it, or Redis lost the list): back to pending, unsent.
            return Outcome(item, "not_sent")
        # Held up since (a slow Redis): judged again, right before the call, against
        # most of an interval; the row is listed as not called while it waits again.
        if time.time() - moment <= self.held_after_s:
            return _GO
        if not self.uncalled.list_again(item.listed):
            return Outcome(item, "not_sent")
        return _AGAIN

    async def _take(self, claim: str) -> bool:
        """``Uncalled.take_or_refuse`` on the loop: the claims asked for in one turn share a round trip."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        self._asks.append((claim, answer))
        if len(self._asks) == 1:
            loop.call_soon(self._take_round)
        return await answer

    def _take_round(self) -> None:
        asks, self._asks = self._asks, []
        taken: set[str] = set()
        try:
            taken = self.uncalled.take_many([claim for claim, _ in asks])
        except redis.RedisError:
            log.warning("%s: Redis unreachable before %d sends; back to pending", self.uncalled.key, len(asks))
        except Exception:  # not taken, so not sent: every send of the round is answered
            log.exception("%s: taking %d rows off the list failed; back to pending", self.uncalled.key, len(asks))
        finally:
            for claim, answer in asks:
                if not answer.done():  # a send cancelled meanwhile
                    answer.set_result(claim in taken)

    def _late(self) -> float | None:
        """Count a send too late for its slot and return the next free one.

        None when Redis cannot give one: the send goes back to pending unsent (its row is
        on the not-yet-called list, never taken or listed again), not lost with the batch.
        """
        with self._late_lock:
            self.late += 1
        try:
            return self.limiter.reserve(self.paces, 1)[0]
        except redis.RedisError as exc:
            log.warning("%s: no new slot for a late send (%s); back to pending", self.uncalled.key, exc)
            return None

    def _failed(self, campaign: Campaign, item: Claimed, exc: Exception, attempts: int) -> Outcome:
        """The outcome of a send that raised (``attempts``: the row's, read when it may be retried)."""
        if not isinstance(exc, SendError):
            log.error(
                "campaign %s: provider error sending to recipient %s", campaign.id, item.recipient_id, exc_info=exc
            )
            return Outcome(item, "failed", error_code="provider_error", error_msg=f"{type(exc).__name__}: {exc}")
        if exc.maybe_taken:
            # The provider may have taken it: never send twice; the callback settles it.
            return Outcome(item, "unknown", error_code=exc.code or "timeout", error_msg=exc.message)
        retry = exc.retryable and attempts < MAX_ATTEMPTS
        return Outcome(item, "retry" if retry else "failed", error_code=exc.code or "send_error", error_msg=exc.message)

    def _attempts(self, item: Claimed) -> int:
        """The row's attempts so far; 0 when the database cannot say (one retry too many at worst)."""
        try:
            with self.db.session() as db:
                return db.scalar(select(Recipient.attempts).where(Recipient.id == item.recipient_id)) or 0
        except Exception:  # the send's outcome matters more than its count
            log.warning("recipient %s: its attempts could not be read", item.recipient_id, exc_info=True)
            return 0


def _retryable(exc: Exception) -> bool:
    """A failure retried unless the row ran out of attempts (so they are worth reading)."""
    return isinstance(exc, SendError) and exc.retryable and not exc.maybe_taken


def _sent(item: Claimed, sent: Sent) -> Outcome:
    return Outcome(item, "delivered" if sent.status == "delivered" else "sent", provider_id=sent.provider_id)
