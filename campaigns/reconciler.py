"""The scheduler's campaign duties: launch what is due, and keep Redis honest to the database.

The database is the truth; Redis only holds jobs. Every minute the reconciler:

- queues again the batches that still have ``pending`` rows but no job (Redis was
  flushed or restarted, a job was lost);
- turns rows left ``sending`` by a worker that died into ``unknown`` — never sent
  again; the status callback that carries the message id settles them, or they are
  reported as uncertain;
- completes active campaigns with nothing left to send (the last batch may have died).
"""

from __future__ import annotations

import datetime as dt
import logging

from rq import Queue
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select, update

from bot.db import utcnow
from bot.models import Message
from bot.runtime import Runtime
from campaigns import operations, planner
from campaigns.models import Campaign, CampaignStatus, Recipient

log = logging.getLogger(__name__)
# A send takes at most the twilio client's timeout (10 s); a row "sending" for longer
# than this, with no job running its batch, was left by a worker that died.
STALE_SENDING = dt.timedelta(minutes=2)


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


def _jobs_alive(rt: Runtime) -> set[str]:
    queue = Queue(planner.SEND_QUEUE, connection=rt.redis)
    alive = set(queue.job_ids)
    alive |= set(StartedJobRegistry(queue=queue).get_job_ids())
    alive |= set(ScheduledJobRegistry(queue=queue).get_job_ids())
    # A retry job (batch-7-3-r2) speaks for its batch too.
    return alive | {job.rsplit("-r", 1)[0] for job in alive if "-r" in job}


def reconcile(rt: Runtime, now: dt.datetime | None = None) -> dict[str, int]:
    """Requeue lost batches, settle rows left sending, complete finished campaigns."""
    now = now or utcnow()
    alive = _jobs_alive(rt)
    requeued = unknown = completed = 0
    with rt.db.session() as db:
        campaigns = list(db.scalars(select(Campaign).where(Campaign.status == CampaignStatus.ACTIVE)))
    for campaign in campaigns:
        with rt.db.session(write=True) as db:
            rows = db.execute(
                select(Recipient.id, Recipient.batch, Recipient.message_id).where(
                    Recipient.campaign_id == campaign.id,
                    Recipient.status == "sending",
                    Recipient.sending_at < now - STALE_SENDING,
                )
            ).all()
            stale = [(rid, mid) for rid, batch, mid in rows if planner.job_id(campaign.id, batch or 0) not in alive]
            if stale:
                db.execute(
                    update(Recipient)
                    .where(Recipient.id.in_([rid for rid, _ in stale]), Recipient.status == "sending")
                    .values(status="unknown", error_code="worker_lost", error_msg="the worker stopped while sending")
                    .execution_options(synchronize_session=False)
                )
                db.execute(
                    update(Message)
                    .where(Message.id.in_([mid for _, mid in stale if mid]), Message.status == "sending")
                    .values(status="unknown", error_code="worker_lost")
                    .execution_options(synchronize_session=False)
                )
                unknown += len(stale)
                log.warning(
                    "campaign %s: %d row(s) left sending by a lost worker are now unknown", campaign.id, len(stale)
                )
            lost = [b for b in planner.summary(db, campaign).batches if planner.job_id(campaign.id, b) not in alive]
            if not lost:
                completed += operations.complete_if_done(db, campaign.id)
        if lost:
            requeued += planner.enqueue(rt.redis, campaign, lost)
            log.warning("campaign %s: batch(es) %s had pending rows but no job: queued again", campaign.id, lost)
    return {"requeued": requeued, "unknown": unknown, "completed": completed}
