"""Issue 6, item 7: a provider call must never outlive the batch job that makes it.

RQ kills a job past its timeout; a send cut off that way would be left ``sending``. Every
way a batch job is queued (launch, a retry, a wait for a send window, the reconciler)
gives it the batch's timeout, which exceeds the longest TWILIO_TIMEOUT_S allowed.
"""

from __future__ import annotations

import datetime as dt

import pytest
from rq import Queue
from rq.job import Job

from bot.db import utcnow
from bot.settings import MAX_TWILIO_TIMEOUT_S, Settings, SettingsError
from campaigns import operations, planner, reconciler
from tests.campaigns.conftest import BOOTH_SPEC, World


def test_the_longest_provider_timeout_is_shorter_than_any_batch_job() -> None:
    planner.check_job_timeouts(MAX_TWILIO_TIMEOUT_S)
    with pytest.raises(ValueError, match="must be shorter"):
        planner.check_job_timeouts(planner.JOB_MARGIN_S)
    with pytest.raises(SettingsError, match="TWILIO_TIMEOUT_S"):
        Settings.from_env({"TWILIO_TIMEOUT_S": str(MAX_TWILIO_TIMEOUT_S + 1)})


def test_every_batch_job_gets_the_batch_timeout(world: World) -> None:
    world.voter("+919800000001", "ward=3")
    campaign = world.campaign(BOOTH_SPEC, pace_per_s=1)
    operations.launch(world.rt, campaign.id)
    campaign = world.get(campaign.id)
    expected = planner.job_timeout(campaign)
    # A batch at 1/s takes its size in seconds: the job outlasts it and its slowest send.
    assert expected > campaign.batch_size + MAX_TWILIO_TIMEOUT_S
    conn = world.rt.redis
    planner.requeue_later(conn, campaign, 0)
    planner.requeue_at(conn, campaign, 0, utcnow() + dt.timedelta(hours=1))
    queue = Queue("sends", connection=conn)
    conn.delete(queue.key)  # the launch's job vanished: the reconciler queues it again
    assert reconciler.reconcile(world.rt)["requeued"] == 0  # the retry and the window's job speak for it
    for job_id in queue.scheduled_job_registry.get_job_ids():
        queue.scheduled_job_registry.remove(job_id)
    assert reconciler.reconcile(world.rt)["requeued"] == 1
    windowed = [key.decode().removeprefix("rq:job:") for key in conn.keys("rq:job:batch-*-w*")]
    jobs = [f"batch-{campaign.id}-0", f"batch-{campaign.id}-0-r1", *windowed]
    timeouts = {Job.fetch(job_id, connection=conn).timeout for job_id in jobs}
    assert timeouts == {expected}
