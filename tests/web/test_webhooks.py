"""Twilio webhooks, signed with the twilio SDK's own RequestValidator."""

from __future__ import annotations

import threading
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select, update
from twilio.request_validator import RequestValidator

from bot.conversations import drain_inbound
from bot.engine import load_path
from bot.flowstore import store
from bot.models import Message, MessageStatusEvent, QueuedInbound
from tests.bot.test_conversations import ROOT

TOKEN = "webhook-secret-token"
BASE = "https://canvass.example.org"
SID = "AC" + "0123456789abcdef" * 2


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
        path = ROOT / "flows" / "booth_locator.yaml"
        store(db, load_path(path), path.read_text())
    from bot.flowlibrary import clear_cache

    clear_cache()
    return application


def inbound_form(sid: str = "SM" + "1" * 32, body: str = "booth", channel: str = "sms") -> dict[str, str]:
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    return {
        "MessageSid": sid,
        "AccountSid": SID,
        "From": f"{prefix}+919876543210",
        "To": f"{prefix}+919999900002",
        "Body": body,
        "NumMedia": "0",
    }


def post(client, path: str, form: dict[str, str], *, url: str | None = None, signature: str | None = "sign"):  # type: ignore[no-untyped-def]
    headers = {}
    if signature == "sign":
        signature = RequestValidator(TOKEN).compute_signature(url or BASE + path, form)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(path, data=urlencode(form), headers=headers, content_type="application/x-www-form-urlencoded")


def stored(app, model=Message) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["canvass"].db.session() as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


def queued(redis, kind: str = "send") -> int:  # type: ignore[no-untyped-def]
    """What waits on the high-priority queue: ``send``, messages to send; ``inbound-drain``, drain jobs."""
    from rq.job import Job

    found = 0
    for job_id in redis.lrange("rq:queue:high", 0, -1):
        if job_id.decode().startswith(f"{kind}-"):
            job = Job.fetch(job_id.decode(), connection=redis)
            # One send job carries several messages (a drain batch's replies).
            found += len(job.args[0]) if job.func_name == "bot.tasks.send_messages" else 1
    return found


def drain(app) -> int:  # type: ignore[no-untyped-def]
    """What the woken worker does next: route the messages the webhook stored."""
    return drain_inbound(app.extensions["canvass"], max_s=60)


def test_a_signed_message_is_stored_answered_then_routed(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    response = post(client, "/webhooks/twilio/messages", inbound_form())
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert "<Response>" in response.get_data(as_text=True)
    # Answered once stored: the raw message waits, and a drain job is woken.
    assert stored(app, QueuedInbound) == 1 and stored(app) == 0
    assert queued(redis, "inbound-drain") == 1 and queued(redis) == 0
    assert drain(app) == 1
    assert stored(app) == 3  # the message in, and the flow's two messages out
    assert queued(redis) == 2


@pytest.mark.parametrize(
    "case",
    ["tampered", "missing", "wrong_host", "http_not_https", "other_path", "garbage"],
)
def test_bad_signatures_are_refused_and_nothing_is_kept(app, client, redis, case: str) -> None:  # type: ignore[no-untyped-def]
    form = inbound_form()
    path = "/webhooks/twilio/messages"
    if case == "tampered":
        signature = RequestValidator(TOKEN).compute_signature(BASE + path, form)
        form = {**form, "Body": "STOP"}
    elif case == "missing":
        signature = None
    elif case == "wrong_host":
        signature = RequestValidator(TOKEN).compute_signature("https://evil.example.org" + path, form)
    elif case == "http_not_https":
        signature = RequestValidator(TOKEN).compute_signature(BASE.replace("https", "http") + path, form)
    elif case == "other_path":
        signature = RequestValidator(TOKEN).compute_signature(BASE + "/webhooks/twilio/voice", form)
    else:
        signature = "bm90IGEgc2lnbmF0dXJl"
    response = post(client, path, form, signature=signature)
    assert response.status_code == 403
    assert stored(app, QueuedInbound) == 0 and redis.llen("rq:queue:high") == 0
    assert drain(app) == 0 and stored(app) == 0


def test_an_encoded_query_string_is_signed_as_sent(app, client) -> None:  # type: ignore[no-untyped-def]
    path = "/webhooks/twilio/messages?tag=ward%3D12&x=a%20b"
    response = post(client, path, inbound_form())
    assert response.status_code == 200
    assert drain(app) == 1 and stored(app) == 3


def test_without_twilio_credentials_webhooks_fail_closed(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app().test_client()  # the sandbox provider: nothing can verify Twilio's signature
    response = post(client, "/webhooks/twilio/messages", inbound_form())
    assert response.status_code == 403
    assert stored(make_app(), QueuedInbound) == 0


def test_the_same_message_twice_is_handled_once(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        assert post(client, "/webhooks/twilio/messages", inbound_form()).status_code == 200
    assert stored(app, QueuedInbound) == 1 and queued(redis, "inbound-drain") == 1
    assert drain(app) == 1
    assert stored(app) == 3 and queued(redis) == 2


def test_a_retry_after_redis_lost_the_first_delivery_is_stored_once(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    assert post(client, "/webhooks/twilio/messages", inbound_form()).status_code == 200
    redis.flushdb()  # the de-duplication key and the drain job are gone; the stored row is not
    assert post(client, "/webhooks/twilio/messages", inbound_form()).status_code == 200
    assert stored(app, QueuedInbound) == 1
    assert queued(redis, "inbound-drain") == 1  # the retry woke a drain for the stored row
    assert drain(app) == 1
    assert stored(app) == 3 and queued(redis) == 2


def test_a_missing_field_names_it(app, client) -> None:  # type: ignore[no-untyped-def]
    form = inbound_form()
    form.pop("From")
    response = post(client, "/webhooks/twilio/messages", form, signature="sign")
    assert response.status_code == 422
    assert response.get_json()["field"] == "From"


def test_whatsapp_with_a_profile_name(app, client) -> None:  # type: ignore[no-untyped-def]
    form = {**inbound_form(channel="whatsapp"), "ProfileName": "Asha", "WaId": "919876543210"}
    assert post(client, "/webhooks/twilio/messages", form).status_code == 200
    drain(app)
    with app.extensions["canvass"].db.session() as db:
        replies = db.scalars(select(Message).where(Message.direction == "out")).all()
        assert replies[0].channel == "whatsapp" and replies[0].body.startswith("Namaste Asha!")


def _status(client, message_id: int, status: str, sid: str, error: str | None = None):  # type: ignore[no-untyped-def]
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": SID, "To": "+919876543210"}
    if error:
        form["ErrorCode"] = error
    return post(client, f"/webhooks/twilio/message-status?m={message_id}", form)


def test_status_callbacks_only_move_forward_and_are_all_kept(app, client) -> None:  # type: ignore[no-untyped-def]
    post(client, "/webhooks/twilio/messages", inbound_form())
    drain(app)
    with app.extensions["canvass"].db.session() as db:
        out = db.scalars(select(Message).where(Message.direction == "out").order_by(Message.id)).first()
        out.status, out.provider_id = "sent", "SM" + "9" * 32
        message_id = out.id
    for status in ("delivered", "sent", "read", "delivered", "read"):
        assert _status(client, message_id, status, "SM" + "9" * 32).status_code == 204
    with app.extensions["canvass"].db.session() as db:
        message = db.get(Message, message_id)
        assert message.status == "read" and message.delivered_at and message.read_at
        events = db.execute(
            select(MessageStatusEvent.status, MessageStatusEvent.applied).where(
                MessageStatusEvent.message_id == message_id
            )
        ).all()
        assert [tuple(e) for e in events] == [
            ("delivered", True),
            ("sent", False),
            ("read", True),
            ("delivered", False),
            ("read", False),
        ]


def test_a_failed_status_keeps_the_error_code(app, client) -> None:  # type: ignore[no-untyped-def]
    post(client, "/webhooks/twilio/messages", inbound_form())
    drain(app)
    with app.extensions["canvass"].db.session() as db:
        out = db.scalars(select(Message).where(Message.direction == "out")).first()
        out.status, message_id = "unknown", out.id  # the send timed out; the callback settles it
    assert _status(client, message_id, "undelivered", "SM" + "8" * 32, error="30003").status_code == 204
    with app.extensions["canvass"].db.session() as db:
        message = db.get(Message, message_id)
        assert (message.status, message.error_code, message.provider_id) == ("undelivered", "30003", "SM" + "8" * 32)


def test_a_callback_that_settles_an_unknown_send_clears_its_timeout(app, client) -> None:  # type: ignore[no-untyped-def]
    post(client, "/webhooks/twilio/messages", inbound_form())
    drain(app)
    with app.extensions["canvass"].db.session() as db:
        out = db.scalars(select(Message).where(Message.direction == "out")).first()
        out.status, out.error_code, message_id = "unknown", "timeout", out.id  # the answer never came
    assert _status(client, message_id, "delivered", "SM" + "6" * 32).status_code == 204
    with app.extensions["canvass"].db.session() as db:
        message = db.get(Message, message_id)
        assert (message.status, message.error_code, message.delivered_at is not None) == ("delivered", None, True)


@pytest.mark.parametrize("webhook", ["message-status", "messages"])
def test_a_webhook_waits_for_another_writer(app, client, webhook: str) -> None:  # type: ignore[no-untyped-def]
    """On SQLite, a webhook that reads and then writes must not fail "database is locked".

    A voter's reply or a status callback that lands while a campaign batch stores its sends
    would be lost: Twilio does not post either again.
    """
    post(client, "/webhooks/twilio/messages", inbound_form())
    drain(app)
    rt = app.extensions["canvass"]
    with rt.db.session() as db:
        out = db.scalars(select(Message).where(Message.direction == "out")).first()
        out.status, message_id = "sent", out.id
    holding, done = threading.Event(), threading.Event()

    def writer() -> None:  # a batch storing its sends, say
        with rt.db.session(write=True) as db:
            db.execute(update(Message).where(Message.id != message_id).values(attempts=Message.attempts + 1))
            holding.set()
            done.wait(0.5)

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(5)
    try:
        if webhook == "messages":
            response = post(client, "/webhooks/twilio/messages", inbound_form(sid="SM" + "2" * 32, body="1"))
        else:
            response = _status(client, message_id, "delivered", "SM" + "7" * 32)
    finally:
        done.set()
        thread.join(timeout=10)
    assert response.status_code == (200 if webhook == "messages" else 204)
    with rt.db.session() as db:
        assert db.get(Message, message_id).status == ("sent" if webhook == "messages" else "delivered")


@pytest.mark.slow
def test_a_thousand_messages_statuses_replayed_shuffled_with_duplicates(app, client) -> None:  # type: ignore[no-untyped-def]
    import random

    from bot.models import Contact, Sender

    rng = random.Random(11)
    with app.extensions["canvass"].db.session() as db:
        contact = Contact(phone="+919876543210", fields={})
        sender = Sender(provider="twilio", channel="sms", address="+919999900002", healthy=True)
        db.add_all([contact, sender])
        db.flush()
        messages = [
            Message(
                contact_id=contact.id,
                sender_id=sender.id,
                direction="out",
                channel="sms",
                body=f"m{i}",
                status="sent",
                provider_id=f"SM{i:032x}",
            )
            for i in range(1000)
        ]
        db.add_all(messages)
        db.flush()
        ids = [m.id for m in messages]
    # Each message's true history, its final state, and every callback (some twice) in random order.
    final: dict[int, str] = {}
    callbacks = []
    for n, message_id in enumerate(ids):
        history = rng.choice([["delivered", "read"], ["delivered"], ["undelivered"], ["failed"], ["delivered", "read"]])
        final[message_id] = history[-1]
        for status in history:
            callbacks.append((message_id, status, n))
            if rng.random() < 0.3:
                callbacks.append((message_id, status, n))
    rng.shuffle(callbacks)
    for message_id, status, n in callbacks:
        error = "30003" if status in ("failed", "undelivered") else None
        assert _status(client, message_id, status, f"SM{n:032x}", error=error).status_code == 204
    with app.extensions["canvass"].db.session() as db:
        got = dict(db.execute(select(Message.id, Message.status).where(Message.id.in_(ids))).tuples().all())
        kept = db.scalar(select(func.count()).select_from(MessageStatusEvent))
    assert got == final
    assert kept == len(callbacks)  # every raw callback is kept, applied or not
