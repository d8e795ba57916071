"""The fake Twilio Messages API itself: it must refuse what Twilio refuses, or tests using it prove nothing."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl

import pytest
import requests
from twilio.request_validator import RequestValidator

from bot.channels.base import Outbound, SendError
from bot.channels.twilio_base import TwilioAccount
from bot.channels.twilio_sms import TwilioSMS
from tests.fakes.twilio_http import LoopbackServer, Tasks, reply_json
from tests.fakes.twilio_messages import READ, Answer, Callback, FakeTwilioMessages

SID, TOKEN = "AC" + "ab" * 16, "fake-token"
VOTER, OURS = "+919800000001", "+919999900002"


class Receiver:
    """Our side of the callbacks: keeps each form with whether its signature holds."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bool]] = []
        self.server = LoopbackServer(self.receive, Tasks())
        self.url = self.server.url + "/status?m=7"

    def receive(self, handler: BaseHTTPRequestHandler) -> None:
        form = dict(parse_qsl(handler.rfile.read(int(handler.headers["Content-Length"])).decode()))
        url = self.server.url + handler.path
        self.got.append((form, RequestValidator(TOKEN).validate(url, form, handler.headers["X-Twilio-Signature"])))
        reply_json(handler, 204, "")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.server.start()
    yield server
    server.server.stop()


@pytest.fixture
def make_fake() -> Iterator[type[FakeTwilioMessages]]:
    made: list[FakeTwilioMessages] = []

    def build(**options: object) -> FakeTwilioMessages:
        made.append(FakeTwilioMessages(SID, TOKEN, **options).start())  # type: ignore[arg-type]
        return made[-1]

    yield build  # type: ignore[misc]
    for fake in made:
        fake.stop()


def sms_provider(fake: FakeTwilioMessages, timeout_s: float = 1.0) -> TwilioSMS:
    return TwilioSMS(TwilioAccount(SID, TOKEN, api_base=fake.url, timeout_s=timeout_s))


def message(callback: str | None = None, to: str = VOTER) -> Outbound:
    return Outbound(message_id=7, to=to, sender=OURS, channel="sms", text="Will you vote?", status_callback=callback)


def test_accepts_with_unique_sids_and_posts_signed_callbacks(make_fake, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    fake = make_fake()
    provider = sms_provider(fake)
    try:
        sids = {provider.send(message(receiver.url)).provider_id for _ in range(3)}
    finally:
        provider.close()
    fake.wait_idle()
    assert len(sids) == 3 and all(re.fullmatch(r"SM[0-9a-f]{32}", sid) for sid in sids)
    assert all(ok for _, ok in receiver.got)  # signed over the exact URL, query included
    assert [(f["MessageSid"], f["MessageStatus"]) for f, _ in receiver.got if f["MessageSid"] == min(sids)] == [
        (min(sids), "sent"),
        (min(sids), "delivered"),
    ]
    form = receiver.got[0][0]
    assert (form["AccountSid"], form["To"], form["From"], form["ApiVersion"]) == (SID, VOTER, OURS, "2010-04-01")
    assert {c.status for c in fake.callbacks} == {204} and len(fake.callbacks) == 6
    assert [r.get("Body") for r in fake.requests_to(VOTER)] == ["Will you vote?"] * 3


@pytest.mark.parametrize(
    ("form", "auth", "status", "code"),
    [
        ({"From": OURS, "Body": "x"}, (SID, TOKEN), 400, 21604),
        ({"To": VOTER, "Body": "x"}, (SID, TOKEN), 400, 21603),
        ({"To": VOTER, "From": OURS}, (SID, TOKEN), 400, 21602),
        ({"To": VOTER, "From": OURS, "Body": "x", "StatusCallback": "not a url"}, (SID, TOKEN), 400, 21609),
        ({"To": VOTER, "From": OURS, "ContentSid": "HX1", "ContentVariables": "[1]"}, (SID, TOKEN), 400, 21656),
        ({"To": VOTER, "From": OURS, "Body": "x"}, (SID, "wrong"), 401, 20003),
        ({"To": VOTER, "From": OURS, "Body": "x"}, None, 401, 20003),
    ],
    ids=["no_to", "no_from", "no_body", "bad_callback", "bad_variables", "bad_token", "no_auth"],
)
def test_refuses_what_twilio_refuses(make_fake, form: dict[str, str], auth, status: int, code: int) -> None:  # type: ignore[no-untyped-def]
    fake = make_fake()
    answer = requests.post(f"{fake.url}/2010-04-01/Accounts/{SID}/Messages.json", data=form, auth=auth, timeout=5)
    assert answer.status_code == status
    body = answer.json()
    assert (body["code"], body["status"], body["more_info"]) == (
        code,
        status,
        f"https://www.twilio.com/docs/errors/{code}",
    )
    assert fake.requests[0].sid is None and not fake.callbacks


@pytest.mark.parametrize(
    ("answer", "retryable", "code", "maybe_taken"),
    [
        (Answer.rate_limited(), True, "20429", False),
        (Answer.server_error(), True, "20500", False),
        (Answer.refused(21211), False, "21211", False),
        (Answer.refused(63016), False, "63016", False),
        # Once the request is written, a reset cannot be told from one after Twilio took it.
        (Answer.connection_reset(), True, "connection_lost", True),
        (Answer.connection_reset(taken=True), True, "connection_lost", True),
        (Answer.stalled(), True, "timeout", True),
    ],
    ids=["429", "500", "21211", "63016", "reset", "reset_taken", "stall"],
)
def test_faults_reach_the_sdk_as_twilio_would_cause_them(  # type: ignore[no-untyped-def]
    make_fake, answer: Answer, retryable: bool, code: str, maybe_taken: bool
) -> None:
    fake = make_fake()
    fake.for_recipient(VOTER, answer)
    provider = sms_provider(fake, timeout_s=0.5)
    try:
        with pytest.raises(SendError) as caught:
            provider.send(message())
        assert (caught.value.retryable, caught.value.code, caught.value.maybe_taken) == (retryable, code, maybe_taken)
        assert provider.send(message()).provider_id.startswith("SM")  # the next one is accepted
        assert provider.send(message(to="+919800000002")).provider_id.startswith("SM")
    finally:
        provider.close()


def test_latency_and_per_request_answers(make_fake) -> None:  # type: ignore[no-untyped-def]
    fake = make_fake()
    fake.next_requests(Answer(latency_s=0.3), Answer.rate_limited())
    provider = sms_provider(fake)
    try:
        started = time.monotonic()
        provider.send(message())
        assert time.monotonic() - started >= 0.3
        with pytest.raises(SendError):
            provider.send(message(to="+919800000002"))
    finally:
        provider.close()
    assert [r.status for r in fake.requests] == [201, 429]


def test_a_stalled_send_is_taken_and_its_callbacks_come_late(make_fake, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    fake = make_fake()
    fake.for_recipient(VOTER, Answer(stall_s=0.8, callbacks=(Callback("sent"), Callback("undelivered", 30003))))
    provider = sms_provider(fake, timeout_s=0.3)
    try:
        with pytest.raises(SendError, match="in time"):
            provider.send(message(receiver.url))
    finally:
        provider.close()
    assert not receiver.got
    fake.wait_idle()
    (request,) = fake.requests
    assert [(f["MessageSid"], f["MessageStatus"], f.get("ErrorCode")) for f, _ in receiver.got] == [
        (request.sid, "sent", None),
        (request.sid, "undelivered", "30003"),
    ]


def test_callbacks_shuffled_and_duplicated(make_fake, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    fake = make_fake(callbacks=READ, shuffle=True, duplicate=True, seed=3)
    provider = sms_provider(fake)
    try:
        provider.send(message(receiver.url))
    finally:
        provider.close()
    fake.wait_idle()
    statuses = [f["MessageStatus"] for f, _ in receiver.got]
    assert sorted(statuses) == sorted(["sent", "delivered", "read"] * 2)
    assert statuses != ["sent", "sent", "delivered", "delivered", "read", "read"]


def test_a_reset_after_taking_the_message_still_posts_its_callbacks(make_fake, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    fake = make_fake()
    fake.for_recipient(VOTER, Answer.connection_reset(taken=True))
    provider = sms_provider(fake)
    try:
        with pytest.raises(SendError, match="lost before its answer"):
            provider.send(message(receiver.url))
    finally:
        provider.close()
    fake.wait_idle()
    (request,) = fake.requests
    assert (request.status, request.sid is not None) == (0, True)
    assert [(f["MessageSid"], f["MessageStatus"]) for f, _ in receiver.got] == [
        (request.sid, "sent"),
        (request.sid, "delivered"),
    ]
