"""Campaigns through the twilio SDK, end to end, against a fake Twilio that answers back.

The app runs for real on a loopback port (so Twilio's signed status callbacks and a
voter's signed reply reach its webhooks), ``CANVASS_PROVIDER=twilio`` with
``TWILIO_API_BASE`` pointing at ``tests.fakes.twilio_messages``; the batch job runs
in-process as the worker would run it. The fake is programmed per voter: accepted,
read, refused (21211), stalled past the client's timeout, rate limited (429), callbacks
out of order and twice, undelivered (63016).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from rq import Queue
from rq.job import Job
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from bot import outbox
from bot.channels.twilio_base import TwilioMessaging
from bot.conversations import drain_inbound
from bot.flowlibrary import clear_cache
from bot.models import Contact, FlowSession, Message, MessageStatusEvent, Sender
from campaigns import dispatch, operations
from campaigns.exporters import REGISTRY
from campaigns.models import Recipient
from campaigns.uncalled import Uncalled
from tests.campaigns.conftest import BOOTH_SPEC, EXAMPLES, SMS, WHATSAPP, World, seed
from tests.fakes.twilio_messages import READ, Answer, Callback, FakeTwilioMessages

SID = "AC" + "5e" * 16
TOKEN = "end-to-end-auth-token"
CONTENT_SID = "HX" + "c0" * 16
TURNOUT_TEXT = "polling day is 20 Nov, 7am-6pm. Will you vote? Reply 1 yes, 2 no, 3 not sure. STOP to opt out."
STALL_S = 2.0  # the fake answers that late; the client (TWILIO_TIMEOUT_S) gives up after 1 s


@dataclasses.dataclass
class Live:
    """The app serving on ``base``, the fake Twilio it sends to, and the campaign world."""

    world: World
    fake: FakeTwilioMessages
    base: str

    def send_batch(self, campaign_id: int, batch: int = 0) -> dict[str, Any]:
        rt = self.world.rt
        return dispatch.send_batch(rt.db, rt.settings, rt.redis, campaign_id, batch)

    def recipients(self, campaign_id: int) -> dict[str, Recipient]:
        """The campaign's recipients by phone."""
        with self.world.rt.db.session() as db:
            stmt = select(Contact.phone, Recipient).join(Contact, Contact.id == Recipient.contact_id)
            return dict(db.execute(stmt.where(Recipient.campaign_id == campaign_id)).tuples().all())

    def export(self, campaign_id: int) -> dict[str, dict[str, str]]:
        """The funnel CSV, row by phone."""
        out = io.StringIO()
        with self.world.rt.db.session() as db:
            REGISTRY["csv"](db, self.world.get(campaign_id)).write(out)
        return {row["phone"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}


@pytest.fixture
def live(make_app) -> Iterator[Live]:  # type: ignore[no-untyped-def]
    fake = FakeTwilioMessages(SID, TOKEN, callback_gap_s=0.02).start()
    holder: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app = make_app(
        CANVASS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_API_BASE=fake.url,
        TWILIO_TIMEOUT_S="1",
        PUBLIC_BASE_URL=base,
        CANVASS_ACTIONS="flows.actions",
    )
    holder["app"] = app
    seed(app.extensions["canvass"], provider="twilio", content_sid=CONTENT_SID)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    try:
        yield Live(World(app.extensions["canvass"], app), fake, base)
    finally:
        fake.stop()
        server.shutdown()
        serving.join(timeout=5)
        server.server_close()
        outbox.close_providers()
        clear_cache()


ASHA, RAVI, BAD, SLOW, BUSY, SHUFFLED, GONE = (f"+91980000000{n}" for n in range(1, 8))


def test_a_whatsapp_campaign_through_twilio(live: Live) -> None:
    world, fake = live.world, live.fake
    names = {ASHA: "Asha", RAVI: "Ravi", BAD: "Bina", SLOW: "Sunil", BUSY: "Bela", SHUFFLED: "Sita", GONE: "Gita"}
    for phone, name in names.items():
        world.voter(phone, "ward=3", name=name)
    fake.for_recipient(RAVI, Answer(callbacks=READ))
    fake.for_recipient(BAD, Answer.refused(21211))
    fake.for_recipient(SLOW, Answer.stalled(STALL_S))
    fake.for_recipient(BUSY, Answer.rate_limited())  # then accepted
    shuffled = (Callback("delivered"), Callback("sent"), Callback("delivered"), Callback("sent"))
    fake.for_recipient(SHUFFLED, Answer(callbacks=shuffled))
    fake.for_recipient(GONE, Answer(callbacks=(Callback("sent"), Callback("undelivered", 63016))))
    campaign = world.campaign(BOOTH_SPEC)
    plan = operations.launch(world.rt, campaign.id)
    assert (plan.pending, plan.batches) == (7, [0])

    assert live.send_batch(campaign.id) == {"sent": 4, "failed": 1, "unknown": 1, "retry": 1}
    rows = live.recipients(campaign.id)
    # The stalled send may have been taken: it is never sent again, its callback will settle it.
    assert (rows[SLOW].status, rows[SLOW].error_code) == ("unknown", "timeout")
    assert (rows[BAD].status, rows[BAD].error_code) == ("failed", "21211")
    # The 429 goes back to pending, and its batch is queued again for later.
    assert (rows[BUSY].status, rows[BUSY].attempts, rows[BUSY].error_code) == ("pending", 1, "20429")
    (job_id,) = Queue("sends", connection=world.rt.redis).scheduled_job_registry.get_job_ids()
    job = Job.fetch(job_id, connection=world.rt.redis)
    assert (job_id, job.func_name, job.args) == (
        f"batch-{campaign.id}-0-r1",
        "campaigns.tasks.send_batch",
        (campaign.id, 0),
    )
    assert world.get(campaign.id).status == "active"
    assert live.send_batch(*job.args) == {"sent": 1}  # the retry job's run
    assert world.get(campaign.id).status == "completed"
    fake.wait_idle(timeout=15)

    rows = live.recipients(campaign.id)
    assert {phone: (r.status, r.error_code) for phone, r in rows.items()} == {
        ASHA: ("delivered", None),
        RAVI: ("read", None),
        BAD: ("failed", "21211"),
        SLOW: ("delivered", None),  # settled by its late callbacks
        BUSY: ("delivered", None),
        SHUFFLED: ("delivered", None),  # a late "sent" never moves it back
        GONE: ("undelivered", "63016"),
    }
    for phone in (ASHA, RAVI, SLOW, BUSY, SHUFFLED):
        assert rows[phone].sent_at and rows[phone].delivered_at, phone
    assert rows[RAVI].read_at and rows[BUSY].attempts == 2
    assert {c.status for c in fake.callbacks} == {204}  # every signature held

    with world.rt.db.session() as db:
        messages = {m.id: m for m in db.scalars(select(Message).where(Message.campaign_id == campaign.id))}
        callbacks = {  # the status callbacks each message got, in order, and whether each moved it
            mid: [(e.status, e.applied) for e in db.scalars(stmt) if "MessageStatus" in e.raw]
            for mid in messages
            for stmt in [select(MessageStatusEvent).where(MessageStatusEvent.message_id == mid).order_by("id")]
        }
    # Exactly one request per voter (two for the rate-limited one), in Twilio's WhatsApp template shape.
    for phone, name in names.items():
        sent = fake.requests_to(phone)
        assert len(sent) == (2 if phone == BUSY else 1), phone
        request = sent[-1]
        message = messages[rows[phone].message_id]  # type: ignore[index]
        assert request.form == {
            "To": [f"whatsapp:{phone}"],
            "From": [f"whatsapp:{WHATSAPP}"],
            "ContentSid": [CONTENT_SID],
            "ContentVariables": [request.get("ContentVariables")],
            "StatusCallback": [f"{live.base}/webhooks/twilio/message-status?m={message.id}"],
        }
        assert json.loads(request.get("ContentVariables") or "") == {"1": name, "2": "3"}
        assert message.provider_id == request.sid and message.status == rows[phone].status
    assert callbacks[rows[SHUFFLED].message_id] == [  # type: ignore[index]
        ("delivered", True),
        ("sent", False),
        ("delivered", False),
        ("sent", False),
    ]
    assert callbacks[rows[SLOW].message_id] == [("sent", True), ("delivered", True)]  # type: ignore[index]

    exported = live.export(campaign.id)
    assert {phone: (row["status"], row["error_code"]) for phone, row in exported.items()} == {
        phone: (r.status, r.error_code or "") for phone, r in rows.items()
    }
    assert exported[RAVI]["read_at"].endswith("Z") and exported[ASHA]["delivered_at"].endswith("Z")

    # Asha answers the template's question through the signed inbound webhook.
    form = {
        "MessageSid": "SM" + "a1" * 16,
        "AccountSid": SID,
        "From": f"whatsapp:{ASHA}",
        "To": f"whatsapp:{WHATSAPP}",
        "Body": "No",
        "ButtonPayload": "No",
        "NumMedia": "0",
    }
    url = f"{live.base}/webhooks/twilio/messages"
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form)}
    answered = requests.post(url, data=form, headers=headers, timeout=10)
    assert answered.status_code == 200, answered.text
    forged = requests.post(url, data={**form, "Body": "Yes"}, headers=headers, timeout=10)
    assert forged.status_code == 403
    # The webhook stored the reply; the woken worker routes it (here, in this process).
    drain_inbound(world.rt, max_s=60)
    with world.rt.db.session() as db:
        session = db.get(FlowSession, rows[ASHA].session_id)
        assert session is not None and session.replied_at is not None and session.state["node"] == "epic"
    # The flow's next question goes out on the high-priority queue, through the same fake.
    # (Send jobs share the high queue with the inbound drain's.)
    for job_id in Queue("high", connection=world.rt.redis).job_ids:
        if not job_id.startswith("send-"):
            continue
        message_id = int(job_id.removeprefix("send-"))
        assert outbox.send_message(world.rt.db, world.rt.settings, message_id) == "sent"
    question = fake.requests_to(ASHA)[-1]
    assert "EPIC" in (question.get("Body") or "") and question.get("ContentSid") is None
    assert live.export(campaign.id)[ASHA]["replied_at"].endswith("Z")
    fake.wait_idle()


def test_an_sms_campaign_through_twilio(live: Live) -> None:
    world, fake = live.world, live.fake
    world.voter(ASHA, "volunteer", name="Asha")
    world.voter(RAVI, "volunteer", name=None)
    campaign = world.campaign((EXAMPLES / "turnout_sms.yaml").read_text(), pace_per_s=50)
    operations.launch(world.rt, campaign.id)
    assert live.send_batch(campaign.id) == {"sent": 2}
    fake.wait_idle()
    rows = live.recipients(campaign.id)
    for phone, name in ((ASHA, "Asha"), (RAVI, "friend")):
        (request,) = fake.requests_to(phone)
        assert request.form == {
            "To": [phone],
            "From": [SMS],
            "Body": [f"Hi {name}, {TURNOUT_TEXT}"],
            "StatusCallback": [f"{live.base}/webhooks/twilio/message-status?m={rows[phone].message_id}"],
        }
        assert (rows[phone].status, rows[phone].sent_at is not None, rows[phone].delivered_at is not None) == (
            "delivered",
            True,
            True,
        )
    assert world.get(campaign.id).status == "completed"
    assert {row["status"] for row in live.export(campaign.id).values()} == {"delivered"}


def test_a_blast_goes_from_one_event_loop_and_takes_its_rows_off_the_list_together(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twilio sends run as coroutines on the loop thread; rows due together share a Redis round trip."""
    world, fake = live.world, live.fake
    voters = [f"+9198100{n:05d}" for n in range(120)]
    for n, phone in enumerate(voters):
        world.voter(phone, "ward=3", name=f"V{n}")
    rounds: list[int] = []
    take_many = Uncalled.take_many

    def counted(self: Uncalled, claims: Any) -> set[str]:
        rounds.append(len(claims))
        return take_many(self, claims)

    callers: set[str] = set()
    send_async = TwilioMessaging.send_async

    async def watched(self: TwilioMessaging, message: Any) -> Any:
        callers.add(threading.current_thread().name)
        return await send_async(self, message)

    monkeypatch.setattr(Uncalled, "take_many", counted)
    monkeypatch.setattr(TwilioMessaging, "send_async", watched)
    with world.rt.db.session(write=True) as db:  # a pace too fast for slots one by one
        db.execute(update(Sender).values(rate_per_s=10_000))
    campaign = world.campaign(BOOTH_SPEC, pace_per_s=10_000)
    operations.launch(world.rt, campaign.id)
    # A client timeout of 10 s, not the stall tests' 1 s: 96 requests at once to a fake in
    # Python, on a loaded machine, may take a second to be answered.
    outbox.close_providers()
    settings = dataclasses.replace(world.rt.settings, twilio_timeout_s=10.0)
    counts = dispatch.send_batch(world.rt.db, settings, world.rt.redis, campaign.id, 0)
    assert counts == {"sent": 120}, counts
    assert callers == {"async-sends"}
    assert sum(rounds) == 120 and len(rounds) < 40, rounds  # most sends shared a round trip
    assert sorted(r.sid for r in fake.requests if r.sid) == sorted({r.sid for r in fake.requests if r.sid})
    assert sorted(live.recipients(campaign.id)) == sorted(voters)
    assert {len(fake.requests_to(phone)) for phone in voters} == {1}
