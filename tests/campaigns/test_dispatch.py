"""The batch sender: claims, send-time checks, pause within a second, provider failures."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from rq import Queue
from sqlalchemy import func, select, update

from bot.channels import SendError
from bot.channels.base import Outbound, Sent
from bot.consent import ConsentLedger
from bot.models import Contact, FlowSession, FunnelEvent, Message, Sender
from campaigns import caller as caller_module
from campaigns import dispatch, operations, ratelimit
from campaigns.caller import Caller
from campaigns.claims import next_pending
from campaigns.models import Recipient
from tests.campaigns.conftest import BOOTH_SPEC, World


def send(world: World, campaign_id: int, batch: int = 0) -> dict[str, int]:
    return dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign_id, batch)


def recipients(world: World, campaign_id: int) -> list[Recipient]:
    with world.rt.db.session() as db:
        return list(db.scalars(select(Recipient).where(Recipient.campaign_id == campaign_id).order_by(Recipient.id)))


def test_a_batch_is_sent_once_with_sessions_parked_at_the_question(world: World) -> None:
    ids = [world.voter(f"+91980000{i:04d}", "ward=3", name=f"V{i}") for i in range(3)]
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    assert send(world, campaign.id) == {"delivered": 3}
    assert send(world, campaign.id) == {"stopped": "campaign is completed"}  # a second run sends nothing
    rows = recipients(world, campaign.id)
    assert [r.status for r in rows] == ["delivered"] * 3
    assert all(r.attempts == 1 and r.sent_at and r.delivered_at for r in rows)
    assert world.get(campaign.id).status == "completed"
    with world.rt.db.session() as db:
        messages = db.scalars(select(Message).where(Message.campaign_id == campaign.id).order_by(Message.id)).all()
        assert next(m.body for m in messages).startswith("Namaste V0! Polling in ward 3")
        assert messages[0].choices == [{"key": "Yes", "label": "Yes"}, {"key": "No", "label": "No"}]
        assert {m.purpose for m in messages} == {"campaign"} and [m.recipient_id for m in messages] == [
            r.id for r in rows
        ]
        sessions = db.scalars(select(FlowSession).where(FlowSession.campaign_id == campaign.id)).all()
        assert {(s.status, s.waiting_for, s.state["node"]) for s in sessions} == {("waiting", "template", "knows")}
        # The question the template stood in for is a funnel step the voter reached.
        steps = db.scalars(select(FunnelEvent.step).where(FunnelEvent.contact_id == ids[0])).all()
        assert steps == ["answered"]


def test_consent_is_checked_again_at_send_time(world: World) -> None:
    voter = world.voter("+919800000001", "ward=3")
    world.voter("+919800000002", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    with world.rt.db.session() as db:
        contact = db.get(Contact, voter)
        assert contact is not None
        ConsentLedger(db).record(contact, "opted_out", source="keyword", channel="whatsapp")
    assert send(world, campaign.id) == {"delivered": 1}
    skipped = next(r for r in recipients(world, campaign.id) if r.contact_id == voter)
    assert (skipped.status, skipped.skip_code, skipped.message_id) == ("skipped", "opted_out", None)


def test_pause_holds_within_a_second_and_resume_carries_on(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    provider = scripted(lambda m: Sent(provider_id=f"SM{m.message_id:032d}", status="queued"))
    for i in range(40):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC, pace_per_s=10)
    operations.launch(world.rt, campaign.id)
    runner = threading.Thread(target=send, args=(world, campaign.id))
    runner.start()
    time.sleep(1.0)
    operations.simple_move(world.rt, campaign.id, operations.S.PAUSED)
    paused_at = time.monotonic()
    runner.join(timeout=10)
    assert not runner.is_alive()
    sent_by_pause = len(provider.sent)
    time.sleep(0.5)
    assert len(provider.sent) == sent_by_pause  # nothing after the pause
    assert time.monotonic() - paused_at < 2.5
    statuses = [r.status for r in recipients(world, campaign.id)]
    assert "sending" not in statuses  # stopped sends went back to pending, untouched
    assert 5 <= statuses.count("sent") == sent_by_pause <= 20, statuses
    with world.rt.db.session() as db:
        assert (
            db.scalar(select(func.count()).select_from(Message).where(Message.campaign_id == campaign.id))
            == sent_by_pause
        )
    plan = operations.resume(world.rt, campaign.id)
    assert plan.pending == 40 - sent_by_pause and plan.batches == [0]
    send(world, campaign.id)
    assert [r.status for r in recipients(world, campaign.id)] == ["sent"] * 40
    assert len({m.to for m in provider.sent}) == 40 == len(provider.sent)  # nobody twice


def test_provider_failures(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    errors = {
        "+919800000001": SendError("Too many requests", retryable=True, code="20429", status=429),
        "+919800000002": SendError("Invalid 'To' number", retryable=False, code="21211", status=400),
        "+919800000003": SendError("read timed out", retryable=True, code="timeout", maybe_taken=True),
        "+919800000004": SendError("Attempt to send to unsubscribed recipient", retryable=False, code="21610"),
        "+919800000005": SendError("not a WhatsApp user", retryable=False, code="63003"),
    }

    def answer(message: Outbound) -> Sent:
        if message.to in errors:
            raise errors[message.to]
        return Sent(provider_id=f"SM{message.message_id:032d}", status="queued")

    scripted(answer)
    ids = {phone: world.voter(phone, "ward=3") for phone in [*errors, "+919800000006"]}
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    counts = send(world, campaign.id)
    assert counts == {"retry": 1, "failed": 3, "unknown": 1, "sent": 1}
    got = {r.contact_id: r for r in recipients(world, campaign.id)}
    retry = got[ids["+919800000001"]]
    assert (retry.status, retry.attempts, retry.error_code) == ("pending", 1, "20429")
    assert (got[ids["+919800000002"]].status, got[ids["+919800000002"]].error_code) == ("failed", "21211")
    assert got[ids["+919800000003"]].status == "unknown"  # never re-sent blindly
    assert got[ids["+919800000006"]].status == "sent"
    # The retry is queued for later, under a job id of its own.
    scheduled = Queue("sends", connection=world.rt.redis).scheduled_job_registry.get_job_ids()
    assert scheduled == [f"batch-{campaign.id}-0-r1"]
    with world.rt.db.session() as db:
        assert db.get(Contact, ids["+919800000004"]).consent == "opted_out"  # type: ignore[union-attr]
        assert db.get(Contact, ids["+919800000005"]).whatsapp is False  # type: ignore[union-attr]
        failed_session = db.get(FlowSession, got[ids["+919800000002"]].session_id)
        assert failed_session is not None and failed_session.end_reason == "not_sent"
    assert world.get(campaign.id).status == "active"  # a row is still pending
    # The retry succeeds: a new attempt, a new message; the failed one stays on the timeline.
    del errors["+919800000001"]
    assert send(world, campaign.id) == {"sent": 1}
    retry = next(r for r in recipients(world, campaign.id) if r.contact_id == ids["+919800000001"])
    assert (retry.status, retry.attempts) == ("sent", 2)
    with world.rt.db.session() as db:
        attempts = db.scalars(select(Message.status).where(Message.recipient_id == retry.id).order_by(Message.id)).all()
    assert attempts == ["failed", "sent"]
    assert world.get(campaign.id).status == "completed"


def test_a_row_left_sending_by_a_dead_worker_is_never_sent_again(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    provider = scripted(lambda m: Sent(provider_id=f"SM{m.message_id:032d}", status="queued"))
    world.voter("+919800000001", "ward=3")
    world.voter("+919800000002", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    with world.rt.db.session() as db:
        first = db.scalar(select(Recipient).where(Recipient.campaign_id == campaign.id).order_by(Recipient.id))
        assert first is not None
        first.status = "sending"  # what a worker killed mid-send leaves behind
    send(world, campaign.id)
    assert [m.to for m in provider.sent] == ["+919800000002"]


def test_next_pending_reads_on_from_the_last_row_seen(world: World) -> None:
    for i in range(6):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    with world.rt.db.session() as db:
        rows = next_pending(db, campaign.id, 0, 2, set())
        contacts = dict(db.execute(select(Recipient.id, Recipient.contact_id)).all())
        assert all(contacts[rid] == cid for rid, cid in rows)  # each with its voter
        first = [rid for rid, _ in rows]
        assert first == sorted(first) and len(first) == 2
        # Still pending (never claimed), but before the last row read: not read again.
        following = [rid for rid, _ in next_pending(db, campaign.id, 0, 2, set(), after=first[-1])]
        assert min(following) > first[-1] and len(following) == 2
        # Left out (retried in this run, say): the next ones take their place.
        rest = [rid for rid, _ in next_pending(db, campaign.id, 0, 3, {following[0]}, after=first[-1])]
        assert following[0] not in rest and len(rest) == 3
        assert next_pending(db, campaign.id, 0, 10, set(), after=max(rest)) == []


@pytest.mark.parametrize(("pace", "ahead"), [(1000, True), (20, False)])
def test_a_fast_pace_keeps_every_thread_busy_with_one_chunk_claimed_ahead(
    world: World, scripted, monkeypatch, pace: int, ahead: bool
) -> None:  # type: ignore[no-untyped-def]
    """A slow provider at a fast pace: the next chunk waits for a free thread, not for a claim.

    At a pace with a lateness check (under 250/s), claims wait for room instead: a slot
    could go stale in the pool's queue.
    """
    monkeypatch.setattr(dispatch, "MAX_IN_FLIGHT", 4)
    lock, calls, most = threading.Lock(), [0], {"calls": 0, "claimed": 0}

    def answer(message: Outbound) -> Sent:
        with lock:
            calls[0] += 1
            most["calls"] = max(most["calls"], calls[0])
        with world.rt.db.session() as db:
            claimed = db.scalar(select(func.count()).where(Recipient.status == "sending"))
        with lock:
            most["claimed"] = max(most["claimed"], claimed or 0)
        time.sleep(0.15)
        with lock:
            calls[0] -= 1
        return Sent(provider_id=f"SM{message.message_id:032d}", status="queued")

    scripted(answer)
    with world.rt.db.session() as db:
        db.execute(update(Sender).values(rate_per_s=pace))
    for i in range(16):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC, pace_per_s=pace)
    operations.launch(world.rt, campaign.id)
    assert send(world, campaign.id) == {"sent": 16}
    # Four threads. Ahead: chunks of four, claimed and not yet stored at most eight; else
    # chunks of two, at most four.
    if ahead:
        assert most["calls"] == 4 and 4 < most["claimed"] <= 8, most
    else:
        assert most["calls"] <= 4 and most["claimed"] <= 4, most


def test_a_job_short_of_time_stops_claiming_and_queues_the_rest_of_its_batch(
    world: World, scripted, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A send must never be cut off by the job's timeout, however large the batch.

    With less time left than two waves of provider timeouts, the job claims nothing more:
    what it claimed is sent and stored, the rest stays pending for a job queued at once.
    """
    monkeypatch.setattr(dispatch, "MIN_CLAIMING_S", 0.3)
    calls, campaign = one_batch_at_ten_a_second(world, scripted, 12)
    # A limit shorter than the reserve (2 x TWILIO_TIMEOUT_S + margin): it claims for 0.3 s.
    counts = dispatch.send_batch(
        world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0, time_limit_s=world.rt.settings.twilio_timeout_s
    )
    first = counts.get("sent", 0)
    assert 0 < first < 12, counts
    assert sorted(r.status for r in recipients(world, campaign.id)) == ["pending"] * (12 - first) + ["sent"] * first
    again = continuations(world, campaign.id)
    assert len(again) == 1 and world.get(campaign.id).status == "active"
    # The job queued for the rest sends it; nobody twice.
    assert send(world, campaign.id) == {"sent": 12 - first}
    assert len(calls) == len(set(calls)) == 12
    assert world.get(campaign.id).status == "completed"


def one_batch_at_ten_a_second(world: World, scripted, voters: int) -> tuple[list[str], Any]:  # type: ignore[no-untyped-def]
    """A launched campaign of ``voters`` in one batch at 10/s; the numbers the provider was asked to send to."""
    calls: list[str] = []

    def answer(message: Outbound) -> Sent:
        calls.append(message.to)
        return Sent(provider_id=f"SM{message.message_id:032d}", status="queued")

    scripted(answer)
    with world.rt.db.session() as db:
        db.execute(update(Sender).values(rate_per_s=10))
    for i in range(voters):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC, pace_per_s=10, batch_size=voters)
    operations.launch(world.rt, campaign.id)
    return calls, campaign


def continuations(world: World, campaign_id: int) -> list[str]:
    """The jobs queued for the rest of batch 0 (at the back of the send queue)."""
    return [j for j in Queue("sends", connection=world.rt.redis).job_ids if j.startswith(f"batch-{campaign_id}-0-w")]


def test_a_batch_job_makes_way_for_a_reply_waiting_for_its_worker(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    """Two workers and no reply worker: a reply waits at most about a second behind a batch.

    While a job waits in the reply queue (which this worker also takes), the batch claims
    nothing more, stores what it sent and ends; the rest of the batch is queued again.
    """
    calls, campaign = one_batch_at_ten_a_second(world, scripted, 30)
    replies = Queue("high", connection=world.rt.redis)
    replied: list[float] = []

    def reply_once_sending() -> None:
        # A reply comes in once the batch sends (30 rows at 10/s: three seconds), not at a
        # fixed time: a loaded machine may take longer than that to start the job.
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        replies.enqueue("builtins.len", "reply")
        replied.append(time.monotonic())

    replier = threading.Thread(target=reply_once_sending)
    replier.start()
    counts = dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0, yield_to="high")
    replier.join()
    assert time.monotonic() - replied[0] < 1.5  # the chunk of slots already taken (one second), then the reply
    first = counts.get("sent", 0)
    assert 0 < first < 30 and len(continuations(world, campaign.id)) == 1, counts
    # The continuation, with the reply still waiting, hands over at once and queues another.
    assert dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0, yield_to="high") == {}
    assert len(continuations(world, campaign.id)) == 2
    replies.empty()
    assert send(world, campaign.id) == {"sent": 30 - first}
    assert len(calls) == len(set(calls)) == 30
    assert world.get(campaign.id).status == "completed"


class _RepliesUnseen:
    """The test's Redis, except that the reply queue's length cannot be read (Redis lost)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def llen(self, key: str) -> int:
        raise redis.ConnectionError(f"LLEN {key}: connection refused")


def test_a_reply_queue_that_cannot_be_read_does_not_stop_the_batch(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    """Looking for waiting replies is best effort: the batch sends on, and stores every send."""
    calls, campaign = one_batch_at_ten_a_second(world, scripted, 10)
    conn = _RepliesUnseen(world.rt.redis)
    counts = dispatch.send_batch(world.rt.db, world.rt.settings, conn, campaign.id, 0, yield_to="high")
    assert counts == {"sent": 10} and len(calls) == 10
    assert continuations(world, campaign.id) == []
    assert world.get(campaign.id).status == "completed"


def test_a_send_that_raises_fails_its_job_and_the_sends_beside_it_are_stored(
    world: World, scripted, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    provider = scripted(lambda m: Sent(provider_id=f"SM{m.message_id:032d}", status="queued"))
    ids = [world.voter(f"+91980000000{i}", "ward=3") for i in range(1, 6)]
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    with world.rt.db.session() as db:
        buggy = db.scalar(select(Recipient.id).where(Recipient.contact_id == ids[0]))
    real_sent = caller_module._sent

    def sent(item: Any, answer: Sent) -> Any:  # a bug after the provider took the message
        if item.recipient_id == buggy:
            raise RuntimeError("bug in a send")
        return real_sent(item, answer)

    monkeypatch.setattr(caller_module, "_sent", sent)
    with pytest.raises(RuntimeError, match="bug in a send"):
        send(world, campaign.id)
    got = {r.id: r.status for r in recipients(world, campaign.id)}
    # Its row is the reconciler's (it may have gone); the others sent are stored, and those
    # still waiting for their slots when the job failed went back to pending unsent.
    assert got.pop(buggy) == "sending"
    called = len(provider.sent) - 1
    assert sorted(got.values()) == ["pending"] * (4 - called) + ["sent"] * called, (called, got)


def test_a_send_stuck_past_every_timeout_fails_its_job_in_time(
    world: World, scripted, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()

    def answer(message: Outbound) -> Sent:
        if message.to == "+919800000001":
            release.wait(10)  # stuck, as no provider call with its timeouts can be
        return Sent(provider_id=f"SM{message.message_id:032d}", status="queued")

    scripted(answer)
    for i in range(1, 4):
        world.voter(f"+91980000000{i}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    monkeypatch.setattr(dispatch, "FINISH_WAIT_S", 0.5)
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match=r"1 sends unfinished after 0\.5 s"):
            send(world, campaign.id)
        assert time.monotonic() - started < 5  # the job neither waits for it at its end nor on leaving its pool
    finally:
        release.set()
    assert sorted(r.status for r in recipients(world, campaign.id)) == ["sending", "sent", "sent"]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_late_send_without_a_new_slot_goes_back_to_pending_unsent(asynchronous: bool) -> None:
    class NoRedis:
        def reserve(self, paces: Any, n: int) -> list[float]:
            raise redis.ConnectionError("Redis went away")

    class Provider:
        called = False

        def send(self, message: Any) -> Sent:
            self.called = True
            return Sent(provider_id="SM1", status="queued")

        async def send_async(self, message: Any) -> Sent:
            return self.send(message)

    pace = ratelimit.Pace("sender:1", rate=10)
    caller = Caller(
        None, SimpleNamespace(public_base_url=""), NoRedis(), [pace], SimpleNamespace(key="uncalled"), lambda: True
    )  # type: ignore[arg-type]
    step = SimpleNamespace(outbound=lambda item, url: "message")
    item = SimpleNamespace(recipient_id=7)
    provider = Provider()
    moment = time.time() - 60  # woken a minute after its slot
    if asynchronous:
        outcome = asyncio.run(caller.send_async(provider, None, step, item, moment))  # type: ignore[arg-type]
    else:
        outcome = caller.send(provider, None, step, item, moment)  # type: ignore[arg-type]
    assert (outcome.status, provider.called, caller.late) == ("not_sent", False, 1)


def test_a_failing_job_sends_nothing_more_and_its_waiting_rows_go_back_to_pending(
    world: World, scripted, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    calls, campaign = one_batch_at_ten_a_second(world, scripted, 30)
    active = dispatch.BatchSender.active
    started = time.monotonic()
    failed: list[bool] = []

    def flaky(self: dispatch.BatchSender) -> bool:  # the database lost once, 0.3 s in
        if not failed and time.monotonic() - started > 0.3:
            failed.append(True)
            raise RuntimeError("database connection lost")
        return active(self)

    monkeypatch.setattr(dispatch.BatchSender, "active", flaky)
    with pytest.raises(RuntimeError, match="database connection lost"):
        send(world, campaign.id)
    time.sleep(1.2)  # past every slot the first chunk had
    statuses = [r.status for r in recipients(world, campaign.id)]
    # The sends whose slots had come went; the rest of the chunk, waiting, never will.
    assert 1 <= len(calls) <= 6, calls
    assert statuses.count("sent") == len(calls) and statuses.count("pending") == 30 - len(calls), statuses
