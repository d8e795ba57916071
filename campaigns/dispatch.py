"""The batch sender: one RQ job sends one batch of a campaign, at its pace, concurrently.

Provider calls take 100–300 ms, so a batch keeps many in flight: it reserves about a
second of send slots from the shared pace (``campaigns.ratelimit``), claims that many
rows, and hands each to a thread that waits for its slot and calls the provider. The
campaign's status is read at least every half second and checked again right before
each call, so a pause or an abort holds within a second; rows stopped that way go back
to ``pending`` untouched. Retryable failures put the row back to ``pending`` and the
batch is queued again later; permanent ones fail with the provider's code. A send whose
answer was lost (a timeout, a reset once the request went) may have been taken: it is
``unknown``, never sent again, until its status callback settles it. Claimed rows are
listed as not yet called (``campaigns.uncalled``) until their thread calls the provider, so
the rows of a worker that died before calling go back to ``pending`` rather than ``unknown``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from typing import Any

import redis
from sqlalchemy import select

from bot.channels import SendError
from bot.channels.base import Outbound
from bot.db import Database, utcnow
from bot.flowlibrary import FlowLibrary
from bot.models import Sender
from bot.outbox import NoProvider, provider_for
from bot.settings import Settings
from campaigns import call_dispatch, compliance, lanes, ratelimit
from campaigns.call_claims import prepare_calls, settle_calls
from campaigns.claims import Claimed, Outcome, Step, claim, next_pending
from campaigns.fallback import FALLBACK_BASE
from campaigns.models import Campaign, CampaignStatus, Recipient, TemplateVersion
from campaigns.sendpool import SendPool
from campaigns.settlement import settle, voter_facts
from campaigns.uncalled import Uncalled
from ivr import placing

log = logging.getLogger(__name__)
# Sends in flight per batch job: at 150 ms a call, 96 of them carry ~600 sends a second.
MAX_IN_FLIGHT = 96
MAX_ATTEMPTS = 5
STATUS_EVERY_S = 0.5
# Finished sends are stored together, at most this often (one transaction each time).
SETTLE_EVERY_S = 0.2
SLOTS_RETRY_S = 10


class BatchSender:
    """Sends one batch of one campaign (``send_batch`` job)."""

    def __init__(
        self, db: Database, settings: Settings, conn: Any, campaign_id: int, batch: int, *, first_run: bool = True
    ) -> None:
        self.db = db
        self.settings = settings
        self.conn = conn
        self.campaign_id = campaign_id
        self.batch = batch
        # The batch's own job (not a retry or a wait for a send window): when it ends, the
        # campaign's next waiting batch takes its lane (campaigns.lanes).
        self.first_run = first_run
        self._status = ""
        self._status_read = 0.0
        self._status_lock = threading.Lock()
        self.retried: set[int] = set()
        # Rows whose voters may not be sent yet (send window, blackout): when they may.
        self.deferred: dict[int, dt.datetime] = {}
        self.counts: dict[str, int] = {}
        self.uncalled = Uncalled(conn, campaign_id)
        # Sends whose thread woke too late for their slot and took a new one.
        self.late = 0
        self._late_lock = threading.Lock()
        self.late_after_s = self.held_after_s = math.inf
        self._stored_at = 0.0
        self.voice = False
        self.slots: call_dispatch.LiveCalls | None = None
        # A call campaign stopped for want of a free live-call slot: it goes on shortly.
        self.slots_full = False

    def run(self) -> dict[str, Any]:
        """Send every pending row of the batch; return counts by outcome."""
        with self.db.session() as db:
            campaign = db.get(Campaign, self.campaign_id)
            if campaign is None or campaign.status != CampaignStatus.ACTIVE:
                return {"stopped": f"campaign is {campaign.status if campaign else 'gone'}"}
            step = self._step(db, campaign)
            found = FlowLibrary(db).get(campaign.flow_name or "", campaign.flow_version)
            # Read at each batch's start: a blackout an admin adds holds from the next batch.
            policy = compliance.policy_for(self.settings, campaign, db)
            db.expunge_all()
        if step is None or found is None:
            return {"stopped": "the campaign's template version, sender or flow is missing"}
        flow, _ = found
        sender = step.sender
        self.voice = step.channel == "voice"
        try:
            provider = (
                placing.provider_for(self.settings, sender) if self.voice else provider_for(self.settings, sender)
            )
        except NoProvider as exc:
            log.error("campaign %s: %s", self.campaign_id, exc)
            return {"stopped": str(exc)}
        paces = [
            ratelimit.campaign_pace(campaign.id, campaign.pace_per_s),
            ratelimit.sender_pace(sender.id, sender.rate_per_s),
        ]
        if self.voice:
            account = self.settings.twilio_account_sid if sender.provider == "twilio" else sender.provider
            paces.append(ratelimit.voice_account_pace(account or sender.provider, self.settings.voice_cps))
        self.limiter, self.paces = ratelimit.Limiter(self.conn), paces
        self.late_after_s = ratelimit.tolerance(paces)
        self.held_after_s = ratelimit.tolerance(paces, share=ratelimit.HELD_SHARE)
        self.slots = call_dispatch.live_calls(self.conn, campaign) if self.voice else None
        prepare = prepare_calls if self.voice else None
        # Paces too fast for a lateness check (ratelimit.tolerance) keep every thread busy:
        # a chunk as large as the pool is claimed while all of them still have a send, and
        # waits in the pool's queue for the first free one (a slot cannot go stale there);
        # a claim and a settle cost about as much for 96 rows as for 48. Otherwise half the
        # sends in flight at a time, claimed once half the threads are free: a slow
        # provider holds the claims back rather than let slots go stale in the queue.
        fast = self.late_after_s == math.inf and not self.voice
        chunk = max(1, min(MAX_IN_FLIGHT if fast else MAX_IN_FLIGHT // 2, math.ceil(min(p.rate for p in paces))))
        ahead = chunk if fast else 0
        with SendPool[Outcome](MAX_IN_FLIGHT, f"c{campaign.id}b{self.batch}") as pool:
            after = 0  # the last row read: every row before it is claimed, left out or not ours
            try:
                while self.active():
                    # At most MAX_IN_FLIGHT (+ ``ahead``) rows claimed and not yet stored:
                    # fewer rows are at stake when the worker dies.
                    most = MAX_IN_FLIGHT + ahead - chunk
                    while pool.in_flight > most:
                        # Stored as soon as enough have finished to make room for the next
                        # claim (else every SETTLE_EVERY_S): fast sends would otherwise wait
                        # for the next round of storing with the provider idle.
                        self._store_done(pool, every_s=SETTLE_EVERY_S, room=pool.in_flight - most)
                        self.active()
                        if pool.in_flight > most:
                            time.sleep(0.005)
                    room = min(chunk, MAX_IN_FLIGHT + ahead - pool.in_flight)
                    if self.slots is not None:
                        # A call campaign never has more than max_concurrent calls live.
                        room = min(room, self.slots.free())
                        if room == 0:
                            self.slots_full = True
                            break
                    # The rows to claim are read in the claim's own transaction (one
                    # checkout, BEGIN and COMMIT less per chunk); the claim checks again
                    # that each is still pending.
                    with self.db.session(write=True) as db:
                        ids = next_pending(
                            db, campaign.id, self.batch, room, self.retried | set(self.deferred), after=after
                        )
                        if not ids:
                            break
                        after = ids[-1][0]
                        claimed, deferred = claim(db, campaign, step, flow, ids, utcnow(), policy, prepare)
                        # Listed before the claim commits: a worker that dies from here on
                        # leaves rows the reconciler can tell were never sent.
                        self.uncalled.add([c.recipient_id for c in claimed])
                    self.deferred.update(deferred)
                    # Slots are taken once the rows are ready to go (none for skipped or
                    # deferred voters), so the first ones have not passed during the claim.
                    moments = self.limiter.reserve(paces, len(claimed))
                    for item, moment in zip(claimed, moments, strict=True):
                        pool.submit(self._send, provider, campaign, step, item, moment)
                    # Plan the next second only when this one's slots have come, storing
                    # finished sends meanwhile.
                    while moments and time.time() < moments[-1]:
                        self._store_done(pool, every_s=SETTLE_EVERY_S)
                        self.active()
                        time.sleep(min(0.05, max(0.0, moments[-1] - time.time())))
            finally:
                # Whatever stopped the batch (Redis lost, the job's timeout), what the
                # provider said about the sends in flight is stored: the rows never sent go
                # back to pending, instead of being left "sending" (then unknown) for good.
                while not pool.wait_all(timeout=0.1):
                    self.active()  # the sends still waiting for their slots see a pause
                self._store_done(pool)
        self._finish(campaign)
        return self.counts

    def active(self) -> bool:
        """True while the campaign is active (read from the database at most every 0.5 s).

        The batch's own loop calls this at least every tenth of a second; the sending
        threads only look at the last status read (``_still_active``), so no send waits for
        the database between its slot and its provider call.
        """
        if time.monotonic() - self._status_read >= STATUS_EVERY_S and self._status_lock.acquire(blocking=False):
            try:
                with self.db.session() as db:
                    self._status = db.scalar(select(Campaign.status).where(Campaign.id == self.campaign_id)) or ""
                self._status_read = time.monotonic()
            finally:
                self._status_lock.release()
        return self._status == CampaignStatus.ACTIVE

    def _still_active(self) -> bool:
        """The last status read, at most about half a second old (see ``active``)."""
        return self._status == CampaignStatus.ACTIVE

    def _step(self, db: Any, campaign: Campaign) -> Step | None:
        """The first attempt's channel, sender and template, or for a fallback batch the fallback's."""
        if self.batch >= FALLBACK_BASE:
            cfg = campaign.fallback or {}
            channel, bindings = cfg.get("channel", ""), cfg.get("variables") or campaign.variables
            version, sender = (
                db.get(TemplateVersion, cfg.get("template_version_id")),
                db.get(Sender, cfg.get("sender_id")),
            )
        else:
            channel, bindings = campaign.channel, campaign.variables
            # A call has no template: the flow speaks.
            version = db.get(TemplateVersion, campaign.template_version_id) if campaign.template_version_id else None
            sender = db.get(Sender, campaign.sender_id) if campaign.sender_id else None
        if (version is None and channel != "voice") or sender is None:
            return None
        return Step(channel, sender, version, bindings)

    def _send(self, provider: Any, campaign: Campaign, step: Step, item: Claimed, moment: float) -> Outcome:
        message = None if self.slots is not None else self._outbound(step, item)
        while True:
            ratelimit.wait_until(moment)
            # Woken late (a busy machine): sent now, this send would crowd the next ones
            # beyond the pace. It takes the next free slot instead; its own is lost.
            if time.time() - moment > self.late_after_s:
                moment = self._late()
                continue
            # Taken off the not-yet-called list only now, right before the call: a worker
            # that dies while waiting leaves a row the reconciler knows was never sent.
            if not self._still_active() or not self._take(item):
                # Paused or aborted; or the row is no longer ours to send (the reconciler
                # released it, or Redis lost the list): back to pending, unsent.
                return Outcome(item, "not_sent")
            # Held up since (a slow Redis): judged again, right before the call, against
            # most of an interval; the row is listed as not called while it waits again.
            if time.time() - moment <= self.held_after_s:
                break
            if not self._untake(item):
                return Outcome(item, "not_sent")
            moment = self._late()
        try:
            if message is None:
                return call_dispatch.place(provider, self.settings, campaign, step.sender, item, self.slots)
            sent = provider.send(message)
        except SendError as exc:
            if exc.maybe_taken:
                # The provider may have taken it: never send twice; the callback settles it.
                return Outcome(item, "unknown", error_code=exc.code or "timeout", error_msg=exc.message)
            retry = exc.retryable and self._attempts(item) < MAX_ATTEMPTS
            return Outcome(
                item, "retry" if retry else "failed", error_code=exc.code or "send_error", error_msg=exc.message
            )
        except Exception as exc:
            log.exception("campaign %s: provider error sending to recipient %s", campaign.id, item.recipient_id)
            return Outcome(item, "failed", error_code="provider_error", error_msg=f"{type(exc).__name__}: {exc}")
        status = "delivered" if sent.status == "delivered" else "sent"
        return Outcome(item, status, provider_id=sent.provider_id)

    def _outbound(self, step: Step, item: Claimed) -> Outbound:
        version, sender = step.version, step.sender
        assert version is not None
        return Outbound(
            message_id=item.message_id,
            to=item.to,
            sender=sender.address,
            channel=step.channel,
            text=item.text,
            media_urls=(version.media_url,) if version.media_url else (),
            choices=item.choices,
            content_sid=version.content_sid,
            content_variables=item.content_variables if version.content_sid else None,
            messaging_service_sid=sender.messaging_service_sid,
            validity_s=item.validity_s if step.channel == "sms" else None,
            status_callback=f"{self.settings.public_base_url}/webhooks/twilio/message-status?m={item.message_id}",
        )

    def _take(self, item: Claimed) -> bool:
        """Take the row off the not-yet-called list; False when it is not ours to send now."""
        try:
            return self.uncalled.take(item.recipient_id)
        except redis.RedisError:
            # Not called, and not callable safely: the row goes back to pending.
            log.warning(
                "campaign %s: Redis unreachable before a send; recipient %s back to pending",
                self.campaign_id,
                item.recipient_id,
            )
            return False

    def _late(self) -> float:
        """Count a send too late for its slot and return the next free one."""
        with self._late_lock:
            self.late += 1
        return self.limiter.reserve(self.paces, 1)[0]

    def _untake(self, item: Claimed) -> bool:
        """List the row as not yet called again (it waits for a new slot); False when Redis failed."""
        try:
            self.uncalled.add([item.recipient_id])
            return True
        except redis.RedisError:
            return False

    def _attempts(self, item: Claimed) -> int:
        with self.db.session() as db:
            return db.scalar(select(Recipient.attempts).where(Recipient.id == item.recipient_id)) or 0

    def _store_done(self, pool: SendPool[Outcome], *, every_s: float = 0.0, room: int = 0) -> None:
        """Settle the finished sends.

        With ``every_s``: only that long after the last time, or as soon as ``room`` of
        them (if given) have finished.
        """
        waited = time.monotonic() - self._stored_at
        if every_s and waited < every_s and (not room or pool.finished() < room):
            return
        self._stored_at = time.monotonic()
        outcomes = pool.collect()
        if not outcomes:
            return
        with self.db.session(write=True) as db:
            now = utcnow()
            if self.voice:
                # Calls first: a status callback locks its call, then the message and the
                # recipient; taking them in the same order cannot deadlock with it.
                settle_calls(db, outcomes, now)
            settle(db, outcomes, now)
            voter_facts(db, outcomes)
        for o in outcomes:
            self.counts[o.status] = self.counts.get(o.status, 0) + 1
            if o.status == "retry":
                self.retried.add(o.claimed.recipient_id)
            elif o.status == "not_sent" and self.voice:
                self.slots_full = True  # no live-call slot was free for it

    def _finish(self, campaign: Campaign) -> None:
        from campaigns import operations

        if self.retried:
            operations.requeue_later(self.conn, campaign, self.batch)
        if self.deferred:
            operations.requeue_at(self.conn, campaign, self.batch, min(self.deferred.values()))
        if self.slots_full:
            # Calls still live took every slot: look again once some may have ended.
            operations.requeue_at(self.conn, campaign, self.batch, utcnow() + dt.timedelta(seconds=SLOTS_RETRY_S))
        following: list[int] = []
        if self.first_run:
            # At the back of the queue: other campaigns' batches queued meanwhile go first.
            following = lanes.next_batch(self.conn, campaign)
        if self.retried or self.deferred or self.slots_full or following:
            # Rows of this batch or of the one just queued are still to send: the campaign
            # is not done, and counting its unsettled rows (a scan of all of them) can wait
            # for the last batches. The reconciler checks too, if a chain breaks.
            return
        with self.db.session(write=True) as db:
            operations.complete_if_done(db, self.campaign_id)


def send_batch(
    db: Database, settings: Settings, conn: Any, campaign_id: int, batch: int, *, first_run: bool = True
) -> dict[str, Any]:
    """Send one batch; safe to run twice (rows are claimed), logs what it did.

    ``first_run``: the batch's own job, whose end queues the campaign's next waiting batch.
    """
    started = time.monotonic()
    sender = BatchSender(db, settings, conn, campaign_id, batch, first_run=first_run)
    counts = sender.run()
    log.info(
        "campaign %s batch %s: %s in %.1f s (%d late sends took a new slot)",
        campaign_id,
        batch,
        counts,
        time.monotonic() - started,
        sender.late,
    )
    return counts
