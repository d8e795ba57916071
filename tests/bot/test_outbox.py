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
