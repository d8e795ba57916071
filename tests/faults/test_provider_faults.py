"""A provider that fails: transient errors are retried until delivered; lost answers are never resent.

One campaign of 1,000 voters through the twilio SDK to the fake Twilio (50–150 ms per
answer), the batch jobs run as a worker runs them, their retries at once instead of
after the back-off. A fifth of the voters first get transient refusals (429, 500, 503),
one to three each: all end delivered with exactly one accepted request each. Others
are taken by Twilio whose answer is lost — stalled past TWILIO_TIMEOUT_S, or the
connection reset after the message was taken: never sent again, ``unknown`` until their
status callback settles them. A reset before Twilio took anything cannot be told apart
by a client: it is never resent either, and stays ``unknown`` (reported as uncertain).
"""

from __future__ import annotations

import random

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from bot.models import Contact
from campaigns import dispatch, operations
from campaigns.models import Recipient
from tests.fakes.twilio_messages import Answer
from tests.faults.conftest import Rig, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("backend", ["postgresql"], indirect=True)]
VOTERS = 1_000
TRANSIENT = (Answer.rate_limited(), Answer.server_error(), Answer(status=503, error_code=20503))


def run_until_done(rig: Rig, campaign_id: int, batches: list[int]) -> int:
    """Run the batches, then every retry job at once (as the RQ scheduler would, later); return the runs."""
    rt, queue = rig.rt, Queue("sends", connection=rig.rt.redis)
    runs = 0
    for batch in batches:
        dispatch.send_batch(rt.db, rt.settings, rt.redis, campaign_id, batch)
        runs += 1
    while job_ids := queue.scheduled_job_registry.get_job_ids():
        for job_id in job_ids:
            queue.scheduled_job_registry.remove(job_id)
            dispatch.send_batch(rt.db, rt.settings, rt.redis, *Job.fetch(job_id, connection=rt.redis).args)
            runs += 1
    return runs


def test_transient_errors_are_retried_and_lost_answers_are_never_resent(rig: Rig) -> None:
    rng = random.Random(6)
    phones = rig.voters(VOTERS)
    transient = {phone: rng.randint(1, 3) for phone in rng.sample(phones, VOTERS // 5)}
    for phone, times in transient.items():
        rig.fake.for_recipient(phone, *(rng.choice(TRANSIENT) for _ in range(times)))
    rest = [p for p in phones if p not in transient]
    stalled, reset_taken, reset_lost = rest[:5], rest[5:10], rest[10:13]
    for phone in stalled:
        rig.fake.for_recipient(phone, Answer.stalled(3.0))  # the client gives up after 2 s
    for phone in reset_taken:
        rig.fake.for_recipient(phone, Answer.connection_reset(taken=True))
    for phone in reset_lost:
        rig.fake.for_recipient(phone, Answer.connection_reset())
    campaign_id = rig.campaign(pace=500, batch_size=500)
    plan = operations.launch(rig.rt, campaign_id)
    assert plan.batches == [0, 1]

    runs = run_until_done(rig, campaign_id, plan.batches)
    assert rig.status(campaign_id) == "completed"
    rig.fake.wait_idle(timeout=30)
    wait_for(lambda: rig.statuses(campaign_id).get("delivered") == VOTERS - 3, 30, "the callbacks to settle")

    # Exact counts from the fake's log: one accepted request per voter reached, the
    # transient refusals on top, nothing resent after a lost answer.
    calls = rig.calls()
    assert sum(calls.values()) == VOTERS + sum(transient.values())
    assert all(calls[p] == 1 + transient.get(p, 0) for p in phones)
    accepted = [r for r in rig.fake.requests if r.sid is not None]
    assert len(accepted) == VOTERS - 3 and len({r.get("To") for r in accepted}) == VOTERS - 3
    with rig.rt.db.session() as db:
        rows = dict(
            db.execute(
                select(Contact.phone, Recipient)
                .join(Contact, Contact.id == Recipient.contact_id)
                .where(Recipient.campaign_id == campaign_id)
            )
            .tuples()
            .all()
        )
    assert rig.statuses(campaign_id) == {"delivered": VOTERS - 3, "unknown": 3}
    assert all(rows[p].attempts == 1 + n for p, n in transient.items())
    assert all((rows[p].status, rows[p].attempts) == ("delivered", 1) for p in stalled + reset_taken)
    assert all((rows[p].status, rows[p].error_code) == ("unknown", "connection_lost") for p in reset_lost)
    assert {c.status for c in rig.fake.callbacks} == {204} and len(rig.fake.callbacks) == VOTERS - 3
    print(
        f"\nprovider faults: {VOTERS} voters, {len(transient)} with {sum(transient.values())} transient "
        f"refusals, {sum(calls.values())} provider calls in {runs} batch runs, {VOTERS - 3} delivered; "
        f"{len(stalled)} stalled and {len(reset_taken)} reset after acceptance settled by callbacks; "
        f"{len(reset_lost)} reset before acceptance left unknown, never resent"
    )
