"""The scheduler's campaign duties: launch what is due, and keep Redis honest to the database.

The database is the truth; Redis only holds jobs. Every minute the reconciler:

- queues again the batches that still have ``pending`` rows but no job (Redis was
  flushed or restarted, a job was lost);
- turns rows left ``sending`` by a worker that died into ``unknown`` — never sent
  again; the status callback that carries the message id settles them, or they are
  reported as uncertain — except rows whose provider call had certainly not begun
  (``campaigns.uncalled``), which go back to ``pending`` and are sent once;
- gives the voters the first attempt did not reach their fallback attempt (campaigns.fallback);
- completes active campaigns with nothing left to send (the last batch may have died).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from rq import Queue
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.utils import as_text, parse_composite_key
from sqlalchemy import select, update

from bot.db import utcnow
from bot.models import Message
from bot.runtime import Runtime
from campaigns import call_sweep, fallback, lanes, operations, planner
from campaigns.models import Campaign, CampaignStatus, Recipient
from campaigns.settlement import release
from campaigns.uncalled import Uncalled, entry

log = logging.getLogger(__name__)
# A send takes at most the twilio client's timeout (10 s); a row "sending" for longer
# than this, with no job running its batch, was left by a worker that died.
STALE_SENDING = dt.timedelta(minutes=2)
# How late a scheduled job may be before its batch counts as lost.
SCHEDULED_GRACE = dt.timedelta(minutes=2)
RETRY = re.compile(r"-[rw]\d+$")


def launch_due(rt: Runtime, now: dt.datetime | None = None) -> list[int]:
    """Launch scheduled campaigns whose time has come; return their ids."""
    now = now or utcnow()
    with rt.db.session() as db:
        due = list(
            db.scalars(
                select(Campaign.id).where(Campaign.status == CampaignStatus.SCHEDULED, Campaign.scheduled_at <= now)
            )
        )
    launched = []
    for campaign_id in due:
        try:
            plan = operations.launch(rt, campaign_id, now=now)
        except (operations.CampaignError, ValueError) as exc:
            # It stays scheduled, with the reason on the campaign, for an operator to fix.
            log.error("scheduled campaign %s could not be launched: %s", campaign_id, exc)
            continue
        log.info(
            "scheduled campaign %s launched: %d to send, %d skipped",
            campaign_id,
            plan.pending,
            plan.total - plan.pending,
        )
        launched.append(campaign_id)
    return launched


def _jobs_alive(rt: Runtime, now: dt.datetime) -> set[str]:
    """Ids of the send jobs queued, scheduled, or running with a live lease at ``now``."""
    queue = Queue(planner.SEND_QUEUE, connection=rt.redis)
    alive = set(queue.job_ids)
    # A running job holds a lease in RQ's started registry: a batch job keeps it at 90 s,
    # renewed every 20 s (``campaigns.lease``; RQ alone gives a simple worker's job its
    # whole timeout and a minute). A worker killed outright (SIGKILL, the machine lost)
    # renews nothing: once the lease has run out at ``now`` its job is dead, though RQ
    # only moves it to "failed" at its next cleanup.
    started = StartedJobRegistry(queue=queue)
    leases = rt.redis.zrangebyscore(started.key, now.timestamp(), "+inf")
    alive |= {parse_composite_key(as_text(entry))[0] for entry in leases}
    # A scheduled job (a retry, a wait for a send window) long overdue has lost the RQ
    # scheduler that should have queued it (its worker died holding the lock): its batch
    # is queued again rather than waited for.
    scheduled = ScheduledJobRegistry(queue=queue)
    due_since = (now - SCHEDULED_GRACE).timestamp()
    alive |= {as_text(job) for job in rt.redis.zrangebyscore(scheduled.key, due_since, "+inf")}
    # A retry (batch-7-3-r2) or a job waiting for a send window (batch-7-3-w1764000000)
    # speaks for its batch too.
    return alive | {RETRY.sub("", job) for job in alive}


def reconcile(rt: Runtime, now: dt.datetime | None = None) -> dict[str, int]:
    """Requeue lost batches, settle rows left sending, complete finished campaigns.

    ``now``: the time to judge by (rows ``sending`` for longer than ``STALE_SENDING`` and
    job leases that ran out before it); a later one settles sooner, in tests.
    """
    now = now or utcnow()
    alive = _jobs_alive(rt, now)
    requeued = unknown = released = completed = 0
    with rt.db.session() as db:
        campaigns = list(db.scalars(select(Campaign).where(Campaign.status == CampaignStatus.ACTIVE)))
    for campaign in campaigns:
        with rt.db.session(write=True) as db:
            # The campaign's row first (as an abort takes it, then its sessions): a fallback
            # move and the completion check below are not raced by another completion check.
            status = db.scalar(
                select(Campaign.status).where(Campaign.id == campaign.id).with_for_update(key_share=True)
            )
            if status != CampaignStatus.ACTIVE:
                continue
            rows = db.execute(
                select(Recipient.id, Recipient.batch, Recipient.message_id, Recipient.sending_at).where(
                    Recipient.campaign_id == campaign.id,
                    Recipient.status == "sending",
                    Recipient.sending_at < now - STALE_SENDING,
                )
            ).all()
            listed = {rid: entry(rid, mid, at) for rid, _, mid, at in rows}
            stale = [(rid, mid) for rid, batch, mid, _ in rows if planner.job_id(campaign.id, batch or 0) not in alive]
            if stale:
                # Rows still listed as not yet called were never sent: taking them off the
                # list (atomically, against a sending thread) makes them ours to release.
                taken = Uncalled(rt.redis, campaign.id).take_many([listed[rid] for rid, _ in stale])
                ours = [(rid, mid) for rid, mid in stale if listed[rid] in taken]
                back = release(db, [(rid, mid) for rid, mid in ours if mid is not None])
                released += len(back)
                stale = [(rid, mid) for rid, mid in stale if listed[rid] not in taken]
                if back:
                    log.warning(
                        "campaign %s: %d row(s) claimed by a lost worker but never sent are pending again",
                        campaign.id,
                        len(back),
                    )
            if stale:
                # Messages before recipients, the order a status callback locks them in
                # (web.webhooks): the other order deadlocks with callbacks landing meanwhile.
                db.execute(
                    update(Message)
                    .where(Message.id.in_([mid for _, mid in stale if mid]), Message.status == "sending")
                    .values(status="unknown", error_code="worker_lost")
                    .execution_options(synchronize_session=False)
                )
                made = db.execute(
                    update(Recipient)
                    .where(Recipient.id.in_([rid for rid, _ in stale]), Recipient.status == "sending")
                    .values(status="unknown", error_code="worker_lost", error_msg="the worker stopped while sending")
                    .execution_options(synchronize_session=False)
                ).rowcount
                unknown += made
                log.warning("campaign %s: %d row(s) left sending by a lost worker are now unknown", campaign.id, made)
            moved = fallback.move(db, campaign, now, campaign.batch_size or planner.MAX_BATCH)
            if moved:
                log.info("campaign %s: fallback attempts queued in batch(es) %s", campaign.id, moved)
        # Committed: the locks of the move (the campaign's row, its budget's room) are not
        # held through the counts below.
        with rt.db.session(write=True) as db:
            waiting = lanes.waiting(rt.redis, campaign.id)
            batches = planner.summary(db, campaign).batches
            lost = [b for b in batches if planner.job_id(campaign.id, b) not in alive and b not in waiting]
            if not lost and not waiting:
                completed += operations.complete_if_done(db, campaign.id)
        if lost:
            requeued += lanes.queue(rt.redis, campaign, lost, rt.settings.campaign_lanes)
            log.warning("campaign %s: batch(es) %s had pending rows but no job: queued again", campaign.id, lost)
        elif waiting:
            # Batches wait for a lane but fewer lanes run than should (a worker died between
            # its batch's end and queueing the next): the chain is mended.
            running = len({job for job in alive if job.rsplit("-", 1)[0] == f"batch-{campaign.id}"})
            mended = lanes.next_batch(rt.redis, campaign, rt.settings.campaign_lanes - running)
            if mended:
                requeued += len(mended)
                log.warning("campaign %s: lane(s) lost, waiting batch(es) %s queued", campaign.id, mended)
    calls = call_sweep.sweep(rt, now)
    return {"requeued": requeued, "unknown": unknown, "released": released, "completed": completed, "calls": calls}
