"""The batch sender: one RQ job sends one batch of a campaign, at its pace, concurrently.

Provider calls take 100–300 ms, so a batch keeps many in flight: it reserves about a
second of send slots from the shared pace (``campaigns.ratelimit``), claims that many
rows, and hands each to a send that waits for its slot and calls the provider
(``campaigns.caller``: a coroutine on the process's event loop for a provider that sends
asynchronously, the Twilio messaging channels; a thread otherwise). The
campaign's status is read at least every half second and checked again right before
each call, so a pause or an abort holds within a second; rows stopped that way go back
to ``pending`` untouched. Retryable failures put the row back to ``pending`` and the
batch is queued again later; permanent ones fail with the provider's code. A send whose
answer was lost (a timeout, a reset once the request went) may have been taken: it is
``unknown``, never sent again, until its status callback settles it. Claimed rows are
listed as not yet called (``campaigns.uncalled``) until their send calls the provider, so
the rows of a worker that died before calling go back to ``pending`` rather than ``unknown``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import threading
import time
from typing import Any

import redis
from rq import Queue
from sqlalchemy import select

from bot.db import Database, utcnow
from bot.engine import Flow
from bot.flowlibrary import FlowLibrary
from bot.outbox import NoProvider, provider_for
from bot.sendwindows import Policy
from bot.settings import Settings
from campaigns import call_dispatch, compliance, lanes, planner, ratelimit
from campaigns.asyncpool import AsyncSendPool
from campaigns.call_claims import prepare_calls, settle_calls
from campaigns.caller import Caller
from campaigns.claims import Claimed, Outcome, Prepare, Step, claim, next_pending
from campaigns.fallback import step_for
from campaigns.models import Campaign, CampaignStatus
from campaigns.sendpool import Outcomes, SendPool
from campaigns.settlement import settle, voter_facts
from campaigns.uncalled import Uncalled
from ivr import placing

log = logging.getLogger(__name__)
# Sends in flight per batch job: at 150 ms a call, 96 of them carry ~600 sends a second.
MAX_IN_FLIGHT = 96
STATUS_EVERY_S = 0.5
YIELD_EVERY_S = 0.1  # how often a job that makes way for replies looks at their queue
SETTLE_EVERY_S = 0.2  # finished sends are stored together (one transaction), at most this often
SLOTS_RETRY_S = 10
# The longest a batch waits at its end for its sends in flight (each waits at most for its
# slot, a second or so ahead, and for the provider's timeout).
FINISH_WAIT_S = 300
# What a job keeps of its time limit beyond two waves of provider timeouts, and the least
# time it claims for (a job's limit is never below planner.JOB_MARGIN_S).
STOP_MARGIN_S = 20
MIN_CLAIMING_S = 10


class BatchSender:
    """Sends one batch of one campaign (``send_batch`` job).

    ``first_run``: the batch's own job, whose end queues the campaign's next waiting batch;
    ``time_limit_s``: the job's timeout; ``yield_to``: a queue whose waiting jobs come first.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        conn: Any,
        campaign_id: int,
        batch: int,
        *,
        first_run: bool = True,
        time_limit_s: float | None = None,
        yield_to: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.conn = conn
        self.campaign_id = campaign_id
        self.batch = batch
        self.first_run = first_run
        self._status = ""
        self._status_read = self._yield_read = 0.0
        self._status_lock = threading.Lock()
        self.retried: set[int] = set()
        # Rows whose voters may not be sent yet (send window, blackout): when they may.
        self.deferred: dict[int, dt.datetime] = {}
        self.counts: dict[str, int] = {}
        self.uncalled = Uncalled(conn, campaign_id)
        self._stored_at = 0.0
        self._collected: list[Outcome] = []  # finished sends, not yet stored
        self.voice = False
        self.slots: call_dispatch.LiveCalls | None = None
        self.slots_full = False  # a call campaign stopped for want of a free live-call slot
        self.caller: Caller | None = None  # made when the job starts (see run)
        # The job's time limit (RQ kills it then, cutting off its sends): no row is claimed
        # once what is left could not hold the sends in flight at their slowest (two waves
        # of provider timeouts); the rest of the batch goes to a new job at once.
        reserve = 2 * settings.twilio_timeout_s + STOP_MARGIN_S
        self.claim_until = time.monotonic() + max(MIN_CLAIMING_S, time_limit_s - reserve) if time_limit_s else math.inf
        # A queue whose waiting jobs (replies) this job's worker would take: once one waits, no
        # row is claimed (the job ends when its sends in flight do, the rest queued again).
        self.yield_key = Queue(yield_to, connection=conn).key if yield_to else None
        self.cut_short = False
        self.stopped = False  # the job failed or gave up waiting: no send of it goes any more

    def run(self) -> dict[str, Any]:
        """Send every pending row of the batch; return counts by outcome."""
        with self.db.session() as db:
            campaign = db.get(Campaign, self.campaign_id)
            if campaign is None or campaign.status != CampaignStatus.ACTIVE:
                return {"stopped": f"campaign is {campaign.status if campaign else 'gone'}"}
            step = step_for(db, campaign, self.batch)
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
        self.limiter = ratelimit.Limiter(self.conn)
        self.slots = call_dispatch.live_calls(self.conn, campaign) if self.voice else None
        caller = self.caller = Caller(
            self.db, self.settings, self.limiter, paces, self.uncalled, self._still_active, self.slots
        )
        prepare = prepare_calls if self.voice else None
        # Paces too fast for a lateness check (ratelimit.tolerance) keep every thread busy:
        # a chunk as large as the pool is claimed while all of them still have a send, and
        # waits in the pool's queue for the first free one (a slot cannot go stale there);
        # a claim and a settle cost about as much for 96 rows as for 48. Otherwise half the
        # sends in flight at a time, claimed once half the threads are free: a slow
        # provider holds the claims back rather than let slots go stale in the queue.
        fast = caller.late_after_s == math.inf and not self.voice
        chunk = max(1, min(MAX_IN_FLIGHT if fast else MAX_IN_FLIGHT // 2, math.ceil(min(p.rate for p in paces))))
        ahead = chunk if fast else 0
        # A provider that sends asynchronously (Twilio messaging) sends from one event loop:
        # a hundred threads taking turns cost more CPU than the requests (campaigns.caller).
        asynchronous = not self.voice and hasattr(provider, "send_async")
        pools = AsyncSendPool[Outcome] if asynchronous else SendPool[Outcome]
        send: Any = caller.send_async if asynchronous else caller.send
        with pools.lend(MAX_IN_FLIGHT, f"c{campaign.id}b{self.batch}") as pool:
            after = 0  # the last row read: every row before it is claimed, left out or not ours
            try:
                while self.active():
                    if self.cut_short or time.monotonic() >= self.claim_until:
                        self.cut_short = True
                        break
                    # At most MAX_IN_FLIGHT (+ ``ahead``) rows claimed and not yet stored
                    # (the next claim's transaction stores those collected): fewer rows
                    # are at stake when the worker dies.
                    most = MAX_IN_FLIGHT + ahead - chunk
                    while pool.in_flight > most:
                        # Collected as soon as enough have finished to make room for the
                        # next claim (else every SETTLE_EVERY_S), and stored by the claim's
                        # own transaction: fast sends would otherwise wait for the next
                        # round of storing with the provider idle.
                        self._collect(pool, every_s=SETTLE_EVERY_S, room=pool.in_flight - most)
                        self.active()
                        if pool.in_flight > most:
                            pool.wait_all(timeout=0.005)  # a short wait that notices a dead event loop
                    room = min(chunk, MAX_IN_FLIGHT + ahead - pool.in_flight)
                    if self.slots is not None:
                        # A call campaign never has more than max_concurrent calls live.
                        room = min(room, self.slots.free())
                        if room == 0:
                            self.slots_full = True
                            break
                    found = self._claim_next(campaign, step, flow, policy, prepare, room, after)
                    if found is None:
                        break
                    after, claimed = found
                    # Slots are taken once the rows are ready to go (none for skipped or
                    # deferred voters), so the first ones have not passed during the claim.
                    moments = self.limiter.reserve(paces, len(claimed))
                    for item, moment in zip(claimed, moments, strict=True):
                        pool.submit(send, provider, campaign, step, item, moment)
                    # Plan the next second only when this one's slots have come, storing
                    # finished sends meanwhile.
                    while moments and time.time() < moments[-1]:
                        self._store_done(pool, every_s=SETTLE_EVERY_S)
                        self.active()
                        time.sleep(min(0.05, max(0.0, moments[-1] - time.time())))
            except BaseException:
                self.stopped = True  # a failing job sends nothing more: waiting sends end not_sent
                raise
            finally:
                # Whatever stopped the batch (Redis lost, the job's timeout), what the
                # provider said about the sends in flight is stored: the rows never sent go
                # back to pending, instead of being left "sending" (then unknown) for good.
                try:
                    self._wait_sends(pool)
                finally:
                    self._store_done(pool)
        self._finish(campaign)
        return self.counts

    def _wait_sends(self, pool: Outcomes[Outcome]) -> None:
        """Wait for the sends in flight to finish, at most ``FINISH_WAIT_S``.

        After that (a send stuck past every timeout it has), the job fails: its rows
        still in flight are the reconciler's, rather than a worker waiting forever.
        """
        deadline = time.monotonic() + FINISH_WAIT_S
        while not pool.wait_all(timeout=0.1):
            self.active()  # the sends still waiting for their slots see a pause
            if time.monotonic() > deadline:
                # Given up on: no send of this job may go later, once its rows may be another's.
                self.stopped = True
                unfinished = pool.in_flight - pool.finished()
                raise RuntimeError(
                    f"campaign {self.campaign_id} batch {self.batch}: {unfinished} sends unfinished "
                    f"after {FINISH_WAIT_S} s; their rows are left to the reconciler"
                )

    def active(self) -> bool:
        """True while the campaign is active (read from the database at most every 0.5 s).

        With ``yield_to``, a waiting reply is looked for every 0.1 s. Sending threads look only
        at the last status read (``_still_active``): no send waits for the database before its call.
        """
        if self.yield_key and not self.cut_short and time.monotonic() - self._yield_read >= YIELD_EVERY_S:
            self._yield_read = time.monotonic()
            with contextlib.suppress(redis.RedisError):  # unreachable: no reply is taken meanwhile
                self.cut_short = bool(self.conn.llen(self.yield_key))
        if time.monotonic() - self._status_read >= STATUS_EVERY_S and self._status_lock.acquire(blocking=False):
            try:
                with self.db.session() as db:
                    self._status = db.scalar(select(Campaign.status).where(Campaign.id == self.campaign_id)) or ""
                self._status_read = time.monotonic()
            finally:
                self._status_lock.release()
        return self._status == CampaignStatus.ACTIVE

    def _still_active(self) -> bool:
        """The last status read, at most about half a second old (see ``active``); false once the job failed."""
        return not self.stopped and self._status == CampaignStatus.ACTIVE

    def _claim_next(
        self,
        campaign: Campaign,
        step: Step,
        flow: Flow,
        policy: Policy,
        prepare: Prepare | None,
        room: int,
        after: int,
    ) -> tuple[int, list[Claimed]] | None:
        """Store the sends collected, then claim up to ``room`` of the next pending rows.

        One transaction (one checkout, BEGIN and COMMIT a chunk, not two), in which the
        rows are read and claimed (the claim checks again that each is still pending).
        Returns the last row read and the rows won; None when no pending row is left.
        """
        stored, self._collected = self._collected, []
        try:
            with self.db.session(write=True) as db:
                self._store(db, stored)
                ids = next_pending(db, campaign.id, self.batch, room, self.retried | set(self.deferred), after=after)
                claimed, deferred = claim(db, campaign, step, flow, ids, utcnow(), policy, prepare)
                # Listed before the claim commits: a worker that dies from here on leaves
                # rows the reconciler can tell were never sent.
                self.uncalled.add([c.listed for c in claimed])
        except BaseException:
            self._collected[:0] = stored  # rolled back: stored when the batch ends
            raise
        self._count(stored)
        self.deferred.update(deferred)
        return (ids[-1][0], claimed) if ids else None

    def _store_done(self, pool: Outcomes[Outcome], *, every_s: float = 0.0) -> None:
        """Settle the finished sends (with ``every_s``: only that long after the last time).

        Stored even when a send raised (raised after); kept for the batch's last store
        when the transaction fails, as ``_claim_next`` keeps them.
        """
        try:
            self._collect(pool, every_s=every_s)
        finally:
            stored, self._collected = self._collected, []
            if stored:
                try:
                    with self.db.session(write=True) as db:
                        self._store(db, stored)
                except BaseException:
                    self._collected[:0] = stored
                    raise
                self._count(stored)

    def _collect(self, pool: Outcomes[Outcome], *, every_s: float = 0.0, room: int = 0) -> None:
        """Take the finished sends out of the pool, to be stored by the next ``_store``.

        With ``every_s``: only that long after the last time, or as soon as ``room`` of
        them (if given) have finished.
        """
        waited = time.monotonic() - self._stored_at
        if every_s and waited < every_s and (not room or pool.finished() < room):
            return
        self._stored_at = time.monotonic()
        self._collected += pool.collect()
        pool.raise_failure()  # a send that raised: its job fails, once the others are kept to store

    def _store(self, db: Any, outcomes: list[Outcome]) -> None:
        """Settle ``outcomes`` in ``db``'s transaction."""
        if not outcomes:
            return
        now = utcnow()
        if self.voice:
            # Calls first: a status callback locks its call, then the message and the
            # recipient; taking them in the same order cannot deadlock with it.
            settle_calls(db, outcomes, now)
        settle(db, outcomes, now)
        voter_facts(db, outcomes)
        for o in outcomes:
            # Known before the transaction goes on: a claim in it must not take them again.
            if o.status == "retry":
                self.retried.add(o.claimed.recipient_id)
            elif o.status == "not_sent" and self.voice:
                self.slots_full = True  # no live-call slot was free for it

    def _count(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            self.counts[o.status] = self.counts.get(o.status, 0) + 1

    def _finish(self, campaign: Campaign) -> None:
        from campaigns import operations

        if self.retried:
            planner.requeue_later(self.conn, campaign, self.batch)
        if self.deferred:
            planner.requeue_at(self.conn, campaign, self.batch, min(self.deferred.values()))
        if self.slots_full:
            # Calls still live took every slot: look again once some may have ended.
            planner.requeue_at(self.conn, campaign, self.batch, utcnow() + dt.timedelta(seconds=SLOTS_RETRY_S))
        if self.cut_short:
            planner.requeue_at(self.conn, campaign, self.batch, utcnow())
        following: list[int] = []
        if self.first_run:
            # At the back of the queue: other campaigns' batches queued meanwhile go first.
            following = lanes.next_batch(self.conn, campaign)
        if self.retried or self.deferred or self.slots_full or self.cut_short or following:
            # Rows of this batch or of the one just queued are still to send: the campaign
            # is not done, and counting its unsettled rows (a scan of all of them) can wait
            # for the last batches. The reconciler checks too, if a chain breaks.
            return
        with self.db.session(write=True) as db:
            operations.complete_if_done(db, self.campaign_id)


def send_batch(
    db: Database, settings: Settings, conn: Any, campaign_id: int, batch: int, **options: Any
) -> dict[str, Any]:
    """Send one batch; safe to run twice (rows are claimed), logs what it did.

    ``options``: ``BatchSender``'s ``first_run``, ``time_limit_s`` and ``yield_to``.
    """
    started = time.monotonic()
    sender = BatchSender(db, settings, conn, campaign_id, batch, **options)
    counts = sender.run()
    log.info(
        "campaign %s batch %s: %s in %.1f s (%d late sends took a new slot)%s",
        campaign_id,
        batch,
        counts,
        time.monotonic() - started,
        sender.caller.late if sender.caller else 0,
        "; stopped early (replies waiting or time short), the rest queued again" if sender.cut_short else "",
    )
    return counts
