"""Workers SIGKILLed mid-send, again and again: no voter is messaged twice, none is dropped.

10,000 voters, a pace of 2,000/s, two ``python worker.py`` processes (one running jobs in
its own process, the other with ``--fork``) sending through the
twilio SDK to a fake Twilio that takes 50–150 ms per answer (so dozens of calls are in
flight). At random points the workers and their work-horses are SIGKILLed; the
reconciler runs (as the scheduler would, once the jobs' leases ran out) and the workers
start again. Sends cut off in flight end ``unknown`` and are settled by their status
callbacks; rows claimed but never sent go back to ``pending`` and are sent once.
"""

from __future__ import annotations

import os
import random

import pytest

from bot.db import utcnow
from campaigns import operations
from tests.faults.conftest import LATER, Rig, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("backend", ["postgresql"], indirect=True)]
VOTERS = 10_000
KILLS = 3
WORKERS = 2


def test_sigkilled_workers_neither_double_nor_drop_a_voter(rig: Rig) -> None:
    seed = int(os.environ.get("FAULTS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    phones = rig.voters(VOTERS)
    campaign_id = rig.campaign(pace=2000, batch_size=500)  # many batch ends to die at
    plan = operations.launch(rig.rt, campaign_id)
    assert (plan.pending, len(plan.batches)) == (VOTERS, 20)

    rig.procs.start_workers(WORKERS)
    # Kill points: after so many provider calls, spread over the campaign (FAULTS_SEED repeats a run).
    points = sorted(rng.sample(range(VOTERS // 10, VOTERS * 8 // 10), KILLS))
    killed = []
    for point in points:
        wait_for(lambda point=point: len(rig.fake.requests) >= point, 120, f"{point} provider calls (seed {seed})")
        killed.append(rig.procs.kill_workers())
        # The scheduler's reconcile, once the dead jobs' leases and STALE_SENDING have run out.
        rig.reconcile(now=utcnow() + LATER)
        rig.procs.start_workers(WORKERS)
    assert all(n >= WORKERS for n in killed)

    rig.finish(campaign_id)
    counts = rig.check_every_voter_reached_once(campaign_id, phones)
    lost = rig.lost_answers(campaign_id)
    print(
        f"\nSIGKILL suite (seed {seed}): {counts['voters']} voters, {KILLS} kills at {points} calls "
        f"({sum(killed)} processes), {counts['calls']} provider calls (none twice), {lost} answers lost in "
        f"flight and settled by callbacks ({rig.unknown} made unknown by the reconciler), {rig.released} "
        f"claimed-but-unsent rows released and sent once, {counts['uncertain']} unknown without a call "
        f"(taken off the list, killed before the request left)"
    )
    assert rig.statuses(campaign_id) == {"delivered": counts["calls"], "unknown": counts["uncertain"]} or (
        counts["uncertain"] == 0 and rig.statuses(campaign_id) == {"delivered": VOTERS}
    )
    # The window between taking a row off the list and the request reaching Twilio is short.
    assert counts["uncertain"] <= KILLS * 48
