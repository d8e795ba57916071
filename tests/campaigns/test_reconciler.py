"""The scheduler's campaign duties: launching on time, requeueing lost batches, settling lost sends."""

from __future__ import annotations

import datetime as dt

from rq import Queue
from sqlalchemy import select

from bot.db import utcnow
from bot.flowlibrary import FlowLibrary
from bot.models import Message, Sender
from campaigns import dispatch, operations, reconciler
from campaigns.claims import Step, claim, next_pending
from campaigns.models import Campaign, Recipient, TemplateVersion
from campaigns.uncalled import Uncalled
from tests.campaigns.conftest import BOOTH_SPEC, World, seed
from tests.web.test_webhooks import SID, post


def test_a_scheduled_campaign_launches_when_due_and_not_before(world: World) -> None:
    world.voter("+919800000001", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    at = utcnow() + dt.timedelta(hours=1)
    operations.schedule(world.rt, campaign.id, at)
    assert reconciler.launch_due(world.rt) == []
    assert world.get(campaign.id).status == "scheduled"
    assert reconciler.launch_due(world.rt, now=at + dt.timedelta(seconds=1)) == [campaign.id]
    assert world.get(campaign.id).status == "active"
    assert Queue("sends", connection=world.rt.redis).job_ids == [f"batch-{campaign.id}-0"]


def test_unschedule_and_past_times(world: World) -> None:
    world.voter("+919800000001", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    try:
        operations.schedule(world.rt, campaign.id, utcnow() - dt.timedelta(minutes=1))
    except operations.CampaignError as exc:
        assert "in the past" in str(exc)
    else:
        raise AssertionError("a time in the past was accepted")
    operations.schedule(world.rt, campaign.id, utcnow() + dt.timedelta(days=1))
    operations.simple_move(world.rt, campaign.id, operations.S.READY)
    assert world.get(campaign.id).status == "ready"


def test_batches_lost_with_redis_are_queued_again_and_nobody_is_sent_twice(world: World) -> None:
    for i in range(3):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    world.rt.redis.flushdb()  # Redis restarted without its data
    assert reconciler.reconcile(world.rt) == {"requeued": 1, "unknown": 0, "released": 0, "completed": 0, "calls": 0}
    assert Queue("sends", connection=world.rt.redis).job_ids == [f"batch-{campaign.id}-0"]
    # While that job waits in the queue, another round queues nothing more.
    assert reconciler.reconcile(world.rt)["requeued"] == 0
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    world.rt.redis.flushdb()
    assert reconciler.reconcile(world.rt)["requeued"] == 0  # nothing pending any more
    with world.rt.db.session() as db:
        assert db.scalar(select(Message.id).where(Message.campaign_id == campaign.id).offset(3)) is None


def test_a_send_lost_with_its_worker_becomes_unknown_and_its_callback_settles_it(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(
        CANVASS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN="webhook-secret-token",
        PUBLIC_BASE_URL="https://canvass.example.org",
    )
    rt = app.extensions["canvass"]
    seed(rt)
    world = World(rt)
    world.voter("+919800000001", "ward=3")
    world.voter("+919800000002", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(rt, campaign.id)
    # A worker claimed both rows five minutes ago and died before Twilio answered.
    with rt.db.session() as db:
        c = db.get(Campaign, campaign.id)
        assert c is not None
        found = FlowLibrary(db).get("booth_locator", c.flow_version)
        assert found is not None
        version, sender = db.get(TemplateVersion, c.template_version_id), db.get(Sender, c.sender_id)
        assert version is not None and sender is not None
        ids = next_pending(db, c.id, 0, 10, set())
        step = Step(c.channel, sender, version, c.variables)
        claimed, _ = claim(db, c, step, found[0], ids, utcnow() - dt.timedelta(minutes=5))
    rt.redis.flushdb()
    assert reconciler.reconcile(rt) == {"requeued": 0, "unknown": 2, "released": 0, "completed": 1, "calls": 0}
    assert world.get(campaign.id).status == "completed"
    # Twilio had taken the first one: its callback, carrying our message id, settles it.
    first = claimed[0]
    form = {
        "MessageSid": "SM" + "9" * 32,
        "AccountSid": SID,
        "MessageStatus": "delivered",
        "From": "whatsapp:+919999900001",
        "To": f"whatsapp:{first.to}",
    }
    response = post(app.test_client(), f"/webhooks/twilio/message-status?m={first.message_id}", form)
    assert response.status_code == 204
    with rt.db.session() as db:
        rows = {r.id: r for r in db.scalars(select(Recipient).where(Recipient.campaign_id == campaign.id))}
        message = db.get(Message, first.message_id)
        assert message is not None and (message.status, message.provider_id) == ("delivered", "SM" + "9" * 32)
    assert rows[first.recipient_id].status == "delivered" and rows[first.recipient_id].delivered_at is not None
    assert rows[claimed[1].recipient_id].status == "unknown"  # reported as uncertain, never re-sent


def _claim(rt, campaign_id: int, at: dt.datetime, *, listed: bool):  # type: ignore[no-untyped-def]
    """Claim every pending row of batch 0 as a worker does at ``at`` (listed as not yet called or not)."""
    with rt.db.session() as db:
        c = db.get(Campaign, campaign_id)
        assert c is not None
        found = FlowLibrary(db).get("booth_locator", c.flow_version)
        assert found is not None
        version, sender = db.get(TemplateVersion, c.template_version_id), db.get(Sender, c.sender_id)
        assert version is not None and sender is not None
        ids = next_pending(db, c.id, 0, 10, set())
        claimed, _ = claim(db, c, Step(c.channel, sender, version, c.variables), found[0], ids, at)
        if listed:
            Uncalled(rt.redis, c.id).add([item.listed for item in claimed])
    return claimed


def test_rows_a_dead_worker_claimed_but_never_sent_go_back_to_pending_and_are_sent_once(world: World) -> None:
    for i in range(3):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    claimed = _claim(world.rt, campaign.id, utcnow() - dt.timedelta(minutes=5), listed=True)
    # The dead worker's thread had taken the first row off the list: it may have called Twilio.
    assert Uncalled(world.rt.redis, campaign.id).take(claimed[0].listed)
    world.rt.redis.delete("rq:queue:sends")  # its job is gone too
    assert reconciler.reconcile(world.rt) == {"requeued": 1, "unknown": 1, "released": 2, "completed": 0, "calls": 0}
    with world.rt.db.session() as db:
        rows = {r.id: r for r in db.scalars(select(Recipient).where(Recipient.campaign_id == campaign.id))}
        assert db.get(Message, claimed[1].message_id) is None  # the prepared message went with the claim
    assert [rows[c.recipient_id].status for c in claimed] == ["unknown", "pending", "pending"]
    assert [rows[c.recipient_id].attempts for c in claimed] == [1, 0, 0]
    counts = dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    assert counts == {"delivered": 2}


def test_a_late_thread_of_a_released_claim_cannot_take_the_next_claim_of_its_row(world: World) -> None:
    """A worker stalled, not dead: its row was released and claimed again before its thread asked."""
    world.voter("+919800000001", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    (first,) = _claim(world.rt, campaign.id, utcnow() - dt.timedelta(minutes=5), listed=True)
    world.rt.redis.delete("rq:queue:sends")
    assert reconciler.reconcile(world.rt)["released"] == 1
    (second,) = _claim(world.rt, campaign.id, utcnow(), listed=True)
    assert second.recipient_id == first.recipient_id  # (on SQLite, even the same message id)
    uncalled = Uncalled(world.rt.redis, campaign.id)
    # The stalled thread asks now: the entry listed is the second claim's, not its own.
    assert not uncalled.take(first.listed)
    assert uncalled.take(second.listed)


def test_a_job_whose_worker_stopped_renewing_its_lease_is_dead(world: World) -> None:
    world.voter("+919800000001", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    _claim(world.rt, campaign.id, utcnow() - dt.timedelta(minutes=5), listed=False)
    queue = Queue("sends", connection=world.rt.redis)
    job_id = queue.job_ids[0]
    queue.remove(job_id)
    # A worker took the job and holds its lease for 90 s, then was killed.
    lease = utcnow() + dt.timedelta(seconds=90)
    world.rt.redis.zadd(queue.started_job_registry.key, {f"{job_id}:exec1": lease.timestamp()})
    assert reconciler.reconcile(world.rt)["unknown"] == 0  # within the lease the job may still be sending
    done = reconciler.reconcile(world.rt, now=lease + dt.timedelta(seconds=1))
    assert (done["unknown"], done["completed"]) == (1, 1)
