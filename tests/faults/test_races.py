"""The same thing done twice at once: a double launch, a double click, two jobs for one batch,
the scheduler launching a campaign twice. Exactly one provider call per voter, every time.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from rq import Queue
from rq.job import Job

from bot.db import utcnow
from campaigns import dispatch, operations, reconciler
from campaigns.lifecycle import TransitionRefused
from tests.faults.conftest import Rig, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("backend", ["postgresql"], indirect=True)]
VOTERS = 600


def at_once(*calls: Callable[[], Any], copies: int = 1) -> list[Any]:
    """Run the calls (each ``copies`` times) in threads released together; return results or exceptions."""
    gate = threading.Barrier(len(calls) * copies)
    results: list[Any] = []
    lock = threading.Lock()

    def run(call: Callable[[], Any]) -> None:
        gate.wait()
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each one did
            result = exc
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def send_queued(rig: Rig, campaign_id: int, copies: int = 2) -> None:
    """Run every queued send job ``copies`` times at once, as several workers would take duplicates."""
    rt, queue = rig.rt, Queue("sends", connection=rig.rt.redis)
    jobs = [Job.fetch(job_id, connection=rt.redis) for job_id in queue.job_ids]
    queue.empty()
    at_once(
        *(lambda job=job: dispatch.send_batch(rt.db, rt.settings, rt.redis, *job.args) for job in jobs), copies=copies
    )


def test_a_double_launch_and_two_jobs_per_batch_send_each_voter_once(rig: Rig) -> None:
    phones = rig.voters(VOTERS)
    campaign_id = rig.campaign(pace=1000, batch_size=500)
    # Two operators (or a double click) launch at the same moment.
    results = at_once(lambda: operations.launch(rig.rt, campaign_id), copies=2)
    plans = [r for r in results if not isinstance(r, Exception)]
    assert plans and all(p.pending == VOTERS for p in plans), results
    assert all(isinstance(r, TransitionRefused) for r in results if isinstance(r, Exception)), results
    # A launch of the active campaign again (the click that came late) queues its batches once more.
    operations.launch(rig.rt, campaign_id)
    queued = Queue("sends", connection=rig.rt.redis).job_ids
    assert len(queued) >= 4  # two batches, queued at least twice: every job runs, twice at once
    send_queued(rig, campaign_id)
    assert rig.status(campaign_id) == "completed"
    wait_for(lambda: rig.statuses(campaign_id) == {"delivered": VOTERS}, 30, "the callbacks")
    rig.fake.wait_idle(timeout=30)
    counts = rig.check_every_voter_reached_once(campaign_id, phones)
    print(
        f"\ndouble launch: {len(results)} launches at once ({len(plans)} planned), {len(queued)} jobs each run twice "
        f"concurrently, {counts['calls']} provider calls for {counts['voters']} voters"
    )


def test_the_scheduler_launching_twice_at_once_sends_each_voter_once(rig: Rig) -> None:
    phones = rig.voters(VOTERS)
    campaign_id = rig.campaign(pace=1000, batch_size=500)
    at = utcnow() + dt.timedelta(minutes=5)
    operations.schedule(rig.rt, campaign_id, at)
    due = at + dt.timedelta(seconds=1)
    launched = at_once(lambda: reconciler.launch_due(rig.rt, now=due), copies=3)
    assert sorted(len(ids) for ids in launched)[-1] == 1 and all(ids in ([], [campaign_id]) for ids in launched)
    assert rig.status(campaign_id) == "active"
    send_queued(rig, campaign_id)
    assert rig.status(campaign_id) == "completed"
    wait_for(lambda: rig.statuses(campaign_id) == {"delivered": VOTERS}, 30, "the callbacks")
    rig.fake.wait_idle(timeout=30)
    counts = rig.check_every_voter_reached_once(campaign_id, phones)
    print(
        f"\nscheduler racing itself: 3 launch_due at once, {sum(map(len, launched))} launched, "
        f"{counts['calls']} provider calls for {counts['voters']} voters"
    )
