"""The send job with a Twilio sender, against a fake of Twilio's REST API."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from bot import outbox
from bot.models import Contact, Message, MessageStatusEvent, Sender
from tests.bot.test_twilio_providers import ACCOUNT_SID
from tests.fakes.twilio_messages import Answer, FakeTwilioMessages


@pytest.fixture
def fake() -> Iterator[FakeTwilioMessages]:
    server = FakeTwilioMessages(ACCOUNT_SID, "secret").start()
    yield server
    server.stop()
    outbox.close_providers()


@pytest.fixture
def rt(make_app, fake: FakeTwilioMessages):  # type: ignore[no-untyped-def]
    app = make_app(
        CANVASS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN="secret",
        PUBLIC_BASE_URL="https://canvass.example.org",
        TWILIO_API_BASE=fake.url,
        TWILIO_TIMEOUT_S="1",
    )
    return app.extensions["canvass"]


def pending(rt, text: str = "Hello") -> int:  # type: ignore[no-untyped-def]
    with rt.db.session() as db:
        contact = Contact(phone="+919876543210", fields={})
        sender = Sender(provider="twilio", channel="sms", address="+919999900002", healthy=True)
        db.add_all([contact, sender])
        db.flush()
        message = Message(
            contact_id=contact.id,
            sender_id=sender.id,
            direction="out",
            channel="sms",
            body=text,
            status="pending",
            choices=[{"key": "1", "label": "Yes"}],
        )
        db.add(message)
        db.flush()
        return message.id


def test_sent_through_twilio_with_a_callback_that_names_the_message(rt, fake: FakeTwilioMessages) -> None:  # type: ignore[no-untyped-def]
    message_id = pending(rt)
    assert outbox.send_message(rt.db, rt.settings, message_id) == "sent"
    path, form = fake.requests[0].path, fake.requests[0].form
    assert path.endswith(f"/Accounts/{ACCOUNT_SID}/Messages.json")
    assert form["To"] == ["+919876543210"] and form["From"] == ["+919999900002"]
    assert form["Body"] == ["Hello\n1. Yes"]
    callback = urlsplit(form["StatusCallback"][0])
    assert callback.netloc == "canvass.example.org" and parse_qs(callback.query) == {"m": [str(message_id)]}
    with rt.db.session() as db:
        message = db.get(Message, message_id)
        assert (message.status, message.provider_id[:2], message.attempts) == ("sent", "SM", 1)
    assert outbox.send_message(rt.db, rt.settings, message_id).startswith("not pending")
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("answer", "result", "row"),
    [
        (Answer.rate_limited(), "retry later", "pending"),
        (Answer.refused(20500, 503), "retry later", "pending"),
        (Answer.refused(21211), "failed: 21211", "failed"),
        (Answer.refused(21610), "failed: 21610", "failed"),
    ],
)
def test_refusals(rt, fake: FakeTwilioMessages, answer: Answer, result: str, row: str) -> None:  # type: ignore[no-untyped-def]
    message_id = pending(rt)
    fake.next_requests(answer)
    assert outbox.send_message(rt.db, rt.settings, message_id).startswith(result)
    with rt.db.session() as db:
        assert db.get(Message, message_id).status == row


def test_a_timeout_is_not_sent_again(rt, fake: FakeTwilioMessages) -> None:  # type: ignore[no-untyped-def]
    message_id = pending(rt)
    fake.next_requests(Answer.stalled())  # slower than TWILIO_TIMEOUT_S
    assert outbox.send_message(rt.db, rt.settings, message_id).startswith("unknown")
    with rt.db.session() as db:
        assert db.get(Message, message_id).status == "unknown"
        events = db.scalars(select(MessageStatusEvent.status).where(MessageStatusEvent.message_id == message_id))
        assert list(events) == ["unknown"]
    assert outbox.send_message(rt.db, rt.settings, message_id).startswith("not pending")


def voters_waiting(rt, texts: dict[str, list[str]], **fields) -> list[int]:  # type: ignore[no-untyped-def]
    """Pending replies to several voters (phone -> texts, in order); their ids, as a drain queues them."""
    with rt.db.session() as db:
        sender = Sender(provider="twilio", channel="sms", address="+919999900002", healthy=True)
        db.add(sender)
        db.flush()
        ids = []
        for phone, bodies in texts.items():
            contact = Contact(phone=phone, fields={}, **fields.get(phone, {}))
            db.add(contact)
            db.flush()
            for body in bodies:
                message = Message(
                    contact_id=contact.id,
                    sender_id=sender.id,
                    direction="out",
                    channel="sms",
                    body=body,
                    status="pending",
                )
                db.add(message)
                db.flush()
                ids.append(message.id)
        return ids


def test_a_batch_sends_each_voters_replies_in_order_and_each_once(rt, fake: FakeTwilioMessages) -> None:  # type: ignore[no-untyped-def]
    texts = {f"+9198765000{n:02d}": [f"v{n} first", f"v{n} second", f"v{n} third"] for n in range(8)}
    ids = voters_waiting(rt, texts)
    fake.next_requests(*[Answer(latency_s=0.05)] * len(ids))  # calls overlap across voters
    assert outbox.send_messages(rt.db, rt.settings, ids) == dict.fromkeys(ids, "sent")
    for phone, bodies in texts.items():
        assert [r.form["Body"][0] for r in fake.requests_to(phone)] == bodies
    # Run twice (RQ does not de-duplicate jobs): nothing is sent again.
    assert set(outbox.send_messages(rt.db, rt.settings, ids).values()) == {outbox.NOT_PENDING}
    assert len(fake.requests) == len(ids)


def test_a_batch_stores_every_outcome_apart(rt, fake: FakeTwilioMessages, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bot.channels.twilio_sms import TwilioSMS

    out, limited, refused, stalled, ok, broken = (f"+91987650010{n}" for n in range(6))
    ids = voters_waiting(
        rt, {p: ["hi"] for p in (out, limited, refused, stalled, ok, broken)}, **{out: {"consent": "opted_out"}}
    )
    fake.for_recipient(limited, Answer.rate_limited())
    fake.for_recipient(refused, Answer.refused(21211))
    fake.for_recipient(stalled, Answer.stalled())
    real = TwilioSMS.send

    def send(self, message):  # type: ignore[no-untyped-def]
        if message.to == broken:
            raise KeyError("a bug in the provider")
        return real(self, message)

    monkeypatch.setattr(TwilioSMS, "send", send)
    results = outbox.send_messages(rt.db, rt.settings, ids)
    assert [results[i].split(" ")[0] for i in ids] == ["failed:", "retry", "failed:", "unknown", "sent", "unknown"]
    with rt.db.session() as db:
        rows = db.execute(select(Message.status, Message.error_code).where(Message.id.in_(ids)).order_by(Message.id))
        assert [tuple(r) for r in rows] == [
            ("failed", "opted_out"),
            ("pending", "20429"),
            ("failed", "21211"),
            ("unknown", "timeout"),
            ("sent", None),
            ("unknown", "provider_fault"),
        ]


def test_the_batch_job_queues_again_only_what_may_be_retried(rt, fake: FakeTwilioMessages, redis, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rq import Queue
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    from bot import runtime, tasks

    ids = voters_waiting(rt, {"+919876500201": ["a"], "+919876500202": ["b"], "+919876500203": ["c"]})
    fake.for_recipient("+919876500202", Answer.rate_limited())
    fake.for_recipient("+919876500203", Answer.server_error())
    outbox.queue_sends(rt.redis, ids)
    assert redis.lrange("rq:queue:high", 0, -1) == [f"send-{ids[0]}-3".encode()]  # one job for the three
    monkeypatch.setattr(runtime, "_current", rt)
    results = tasks.send_messages(ids)
    assert results[str(ids[0])] == "sent"
    assert results[str(ids[1])].startswith("retry later") and results[str(ids[2])].startswith("retry later")
    (job_id,) = ScheduledJobRegistry(queue=Queue("high", connection=redis)).get_job_ids()
    job = Job.fetch(job_id, connection=redis)
    assert (job.func_name, job.args) == ("bot.tasks.send_messages", ([ids[1], ids[2]],))
