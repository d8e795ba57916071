"""RQ jobs of campaigns: thin, idempotent, taking ids (job ids ``batch-{campaign}-{n}``)."""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from bot import queues, runtime
from campaigns import lease, planner
from campaigns.dispatch import send_batch as _send_batch


def send_batch(campaign_id: int, batch: int) -> dict[str, Any]:
    """Send one batch of a campaign; running it twice sends nobody twice (rows are claimed)."""
    rt = runtime.current()
    job = get_current_job()
    # Retries (batch-7-3-r2) and waits for a send window (-w...) do not pass the lane on:
    # the batch's own job did when it ended.
    first_run = job is None or job.id == planner.job_id(campaign_id, batch)
    limit = job.timeout if job is not None and job.timeout and job.timeout > 0 else None
    # A worker that also takes replies is handed over to them when one waits.
    replies = queues.REPLIES if job is not None and queues.serves(queues.REPLIES) else None
    with lease.renewed(rt.redis, job):  # a worker killed outright: its batch is taken back within 90 s
        return _send_batch(
            rt.db, rt.settings, rt.redis, campaign_id, batch, first_run=first_run, time_limit_s=limit, yield_to=replies
        )
