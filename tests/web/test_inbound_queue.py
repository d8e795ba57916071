"""The inbound queue: the webhook stores, consent keywords apply at once, drains route.

Messages go in through the real webhook (signed like Twilio signs them); the drain runs
in this process, as the woken worker job or the scheduler's sweep would run it.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, update

from bot import conversations
from bot.engine import load_path
from bot.flowstore import store
from bot.models import ConsentEvent, Contact, FlowSession, HandoffCase, Message, QueuedInbound
from bot.router import Router
from tests.bot.test_conversations import ROOT
from tests.web.test_webhooks import BASE, SID, TOKEN, inbound_form, post, queued

VOTERS = [f"+91987654{n:04d}" for n in range(6)]


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    application = make_app(
        CANVASS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        PUBLIC_BASE_URL=BASE,
        CANVASS_ACTIONS="flows.actions",
    )
    with application.extensions["canvass"].db.session() as db:
        for name in ("booth_locator", "grievance_intake"):
            path = ROOT / "flows" / f"{name}.yaml"
            store(db, load_path(path), path.read_text())
    from bot.flowlibrary import clear_cache

    clear_cache()
    return application


def send(client, body: str, voter: str = VOTERS[0], n: list[int] = [0]):  # type: ignore[no-untyped-def]  # noqa: B006
    n[0] += 1  # a new MessageSid for every message of the test session
    form = {**inbound_form(sid=f"SM{n[0]:032x}", body=body), "From": voter}
    response = post(client, "/webhooks/twilio/messages", form)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def count(app, model, *where) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["canvass"].db.session() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where)) or 0


def waiting(app) -> int:  # type: ignore[no-untyped-def]
    return count(app, QueuedInbound, QueuedInbound.routed_at.is_(None))


def case_notes(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with app.extensions["canvass"].db.session() as db:
        rows = db.execute(select(Contact.phone, HandoffCase.reason).join(Contact, Contact.id == HandoffCase.contact_id))
        return dict(rows.tuples().all())


def test_an_opt_out_is_applied_before_the_webhook_answers(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    send(client, "booth")
    assert waiting(app) == 1 and count(app, Message) == 0  # an ordinary message waits for the drain
    send(client, "Stop!")
    # When the STOP's webhook answered, the voter was already out, with one confirmation
    # queued; the message they sent before it was routed first, in order.
    with app.extensions["canvass"].db.session() as db:
        contact = db.scalar(select(Contact).where(Contact.phone == VOTERS[0]))
        assert contact.consent == "opted_out"
        inbound = db.scalars(select(Message.body).where(Message.direction == "in").order_by(Message.id)).all()
        assert inbound == ["booth", "Stop!"]
        session = db.scalar(select(FlowSession))
        assert (session.status, session.end_reason) == ("ended", "opted_out")
        consent = db.scalars(select(Message.body).where(Message.purpose == "consent")).all()
    assert len(consent) == 1 and "unsubscribed" in consent[0]
    assert count(app, ConsentEvent) == 1
    assert waiting(app) == 0
    assert queued(redis) == 3  # the flow's two replies to "booth", then the confirmation
    assert conversations.drain_inbound(app.extensions["canvass"], max_s=60) == 0  # nothing left to route


def test_an_ordinary_message_does_not_route_in_the_request(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    send(client, "complaint")
    send(client, "Ward 12")
    assert waiting(app) == 2 and count(app, Message) == 0 and queued(redis) == 0
    assert queued(redis, "inbound-drain") == 1  # one drain job for both: it was not done yet
    assert conversations.drain_inbound(app.extensions["canvass"], max_s=60) == 2
    assert queued(redis) == 3  # the opening and "which ward?", then (after "Ward 12") "please describe"


def test_stored_messages_are_routed_by_the_sweep_after_redis_is_flushed(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    import worker

    send(client, "booth", VOTERS[0])
    send(client, "complaint", VOTERS[1])
    send(client, "Ward 3", VOTERS[1])
    redis.flushdb()  # Redis restarted empty: the drain job and its wake-up are gone
    rt = app.extensions["canvass"]
    sweep = next(task for task in worker.PERIODIC if task.name == "inbound-sweep")
    sweep.run(rt)
    assert waiting(app) == 3  # too fresh: a woken drain would normally take them
    with rt.db.session() as db:
        a_minute_ago = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        db.execute(update(QueuedInbound).values(received_at=a_minute_ago))
    sweep.run(rt)
    assert waiting(app) == 0
    assert count(app, Message, Message.direction == "in") == 3
    assert count(app, FlowSession) == 2
    assert queued(redis) == 5  # booth: greeting and question; complaint: opening and question; then the next
    with rt.db.session() as db:
        outcomes = db.scalars(select(QueuedInbound.outcome).order_by(QueuedInbound.id)).all()
    assert outcomes == ["started", "started", "resumed"]


def test_each_voters_messages_are_routed_in_arrival_order(app, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Interleaved conversations, drained by three workers at once taking two voters at a
    # time, so that the voters' messages are spread over many batches and drains.
    monkeypatch.setattr(conversations, "DRAIN_VOTERS", 2)
    for turn in ("complaint", "Ward {n}", "Problem {n}"):
        for n, voter in enumerate(VOTERS):
            send(client, turn.format(n=n), voter)
    rt = app.extensions["canvass"]
    totals: list[int] = []
    drains = [
        threading.Thread(target=lambda: totals.append(conversations.drain_inbound(rt, max_s=60))) for _ in range(3)
    ]
    for t in drains:
        t.start()
    for t in drains:
        t.join(timeout=120)
    assert sum(totals) == 3 * len(VOTERS)
    # The handoff note holds both answers, in the order the voter gave them.
    assert case_notes(app) == {voter: f"grievance at Ward {n}: Problem {n}" for n, voter in enumerate(VOTERS)}
    with rt.db.session() as db:
        for voter in VOTERS:
            rows = db.execute(
                select(Message.id, Message.created_at)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Contact.phone == voter, Message.direction == "in")
                .order_by(Message.id)
            ).all()
            assert [r.created_at for r in rows] == sorted(r.created_at for r in rows)


def test_two_drains_at_once_route_each_message_once(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    voters = [f"+91987650{n:04d}" for n in range(20)]
    for voter in voters:
        send(client, "booth", voter)
    rt = app.extensions["canvass"]
    start = threading.Barrier(2)
    totals: list[int] = []

    def run() -> None:
        start.wait()
        totals.append(conversations.drain_inbound(rt, max_s=60))

    drains = [threading.Thread(target=run) for _ in range(2)]
    for t in drains:
        t.start()
    for t in drains:
        t.join(timeout=120)
    assert sorted(totals, reverse=True)[0] >= 1 and sum(totals) == len(voters)
    assert count(app, Message, Message.direction == "in") == len(voters)
    assert count(app, FlowSession) == len(voters)
    assert count(app, Message, Message.direction == "out") == 2 * len(voters)
    assert queued(redis) == 2 * len(voters)
    assert count(app, QueuedInbound, QueuedInbound.outcome == "started") == len(voters)
    # And once more, later: nothing is routed twice.
    assert conversations.drain_inbound(rt, max_s=60) == 0


def test_a_message_that_breaks_the_router_is_given_up_without_holding_up_others(  # type: ignore[no-untyped-def]
    app, client, monkeypatch
) -> None:
    real = Router.receive

    def receive(self, inbound, sender, **kwargs):  # type: ignore[no-untyped-def]
        if inbound.text == "boom":
            raise RuntimeError("a bug in routing")
        return real(self, inbound, sender, **kwargs)

    monkeypatch.setattr(Router, "receive", receive)
    send(client, "boom", VOTERS[0])
    send(client, "booth", VOTERS[0])  # waits behind the broken message of the same voter
    send(client, "booth", VOTERS[1])
    rt = app.extensions["canvass"]
    assert conversations.drain_inbound(rt, max_s=60) >= 2
    with rt.db.session() as db:
        rows = db.execute(
            select(QueuedInbound.body, QueuedInbound.outcome, QueuedInbound.attempts).order_by(QueuedInbound.id)
        ).all()
    assert [tuple(r) for r in rows] == [("boom", "failed", 3), ("booth", "started", 0), ("booth", "started", 0)]
    assert count(app, FlowSession) == 2 and waiting(app) == 0


def test_a_woken_worker_routes_and_sends_the_replies(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    import worker
    from bot.models import Sender
    from web.context import runtime

    with app.extensions["canvass"].db.session() as db:
        # Replies go out through the sandbox provider (no network in tests).
        db.add(Sender(provider="sandbox", channel="sms", address="+919999900002", healthy=True))
    send(client, "booth", VOTERS[0])
    send(client, "complaint", VOTERS[1])
    assert queued(redis, "inbound-drain") == 1
    with app.app_context():
        assert worker.run_worker(burst=True, rt=runtime()) == 0
    assert waiting(app) == 0
    assert count(app, Message, Message.direction == "out", Message.status == "delivered") == 4


def test_a_drain_at_its_deadline_hands_over_to_a_new_job(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    send(client, "booth", VOTERS[0])
    redis.delete("rq:queue:high")
    assert conversations.drain_inbound(app.extensions["canvass"], max_s=0) == 0
    assert waiting(app) == 1 and queued(redis, "inbound-drain") == 1


def test_a_keyword_whose_routing_failed_is_left_to_the_drain(app, client, redis, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def receive(self, inbound, sender, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug in routing")

    monkeypatch.setattr(Router, "receive", receive)
    send(client, "STOP")
    assert waiting(app) == 1 and queued(redis, "inbound-drain") == 1
    monkeypatch.undo()
    assert conversations.drain_inbound(app.extensions["canvass"], max_s=60) == 1
    assert count(app, Contact, Contact.consent == "opted_out") == 1
