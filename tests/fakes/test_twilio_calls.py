"""The fake Twilio Calls API itself: it must refuse what Twilio refuses and play calls as Twilio does."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from twilio.request_validator import RequestValidator

from bot.channels.base import SendError
from bot.channels.twilio_base import TwilioAccount
from ivr.providers.base import CallRequest
from ivr.providers.twilio_voice import TwilioVoice
from tests.fakes.twilio_calls import CallScript, FakeTwilioCalls
from tests.fakes.twilio_http import LoopbackServer, Tasks, reply_json
from tests.fakes.twilio_rest import Answer

SID, TOKEN = "AC" + "cd" * 16, "fake-token"
VOTER, OURS = "+919800000001", "+919999900002"
ASK = '<Response><Gather numDigits="1" action="/voice/keys?c=7"><Say>Press 1</Say></Gather><Hangup/></Response>'
THANKS = "<Response><Say>Thank you</Say><Hangup/></Response>"


class App:
    """Our side: answers each path with the TwiML it is given; keeps each form and whether its signature holds."""

    def __init__(self) -> None:
        self.twiml: dict[str, str | Callable[[], str]] = {"/voice": ASK, "/voice/keys": THANKS}
        self.got: list[tuple[str, dict[str, str], bool]] = []
        self.server = LoopbackServer(self.receive, Tasks())
        self.url = self.server.url

    def receive(self, handler: BaseHTTPRequestHandler) -> None:
        form = dict(parse_qsl(handler.rfile.read(int(handler.headers["Content-Length"])).decode()))
        valid = RequestValidator(TOKEN).validate(self.url + handler.path, form, handler.headers["X-Twilio-Signature"])
        path = urlsplit(handler.path).path
        self.got.append((path, form, valid))
        answer = self.twiml.get(path, "")
        reply_json(handler, 200 if path.startswith("/voice") else 204, answer() if callable(answer) else answer)

    def statuses(self) -> list[dict[str, str]]:
        return [form for path, form, _ in self.got if path == "/status"]


@pytest.fixture
def app() -> Iterator[App]:
    server = App()
    server.server.start()
    yield server
    server.server.stop()


@pytest.fixture
def fake() -> Iterator[FakeTwilioCalls]:
    server = FakeTwilioCalls(SID, TOKEN, callback_gap_s=0.0).start()
    yield server
    server.stop()


@pytest.fixture
def voice(fake: FakeTwilioCalls) -> Iterator[TwilioVoice]:
    provider = TwilioVoice(TwilioAccount(SID, TOKEN, api_base=fake.url, timeout_s=1.0))
    yield provider
    provider.close()


def call(app: App, to: str = VOTER, **options: object) -> CallRequest:
    return CallRequest(to, OURS, f"{app.url}/voice?c=7", f"{app.url}/status?c=7", **options)  # type: ignore[arg-type]


def test_an_answered_call_is_played_through_our_webhooks(app: App, fake: FakeTwilioCalls, voice: TwilioVoice) -> None:
    fake.for_recipient(VOTER, Answer(callbacks=CallScript(digits=("1",), duration_s=42)))
    sids = {voice.place(call(app)).sid for _ in range(2)}
    fake.wait_idle()
    assert len(sids) == 2 and all(re.fullmatch(r"CA[0-9a-f]{32}", sid) for sid in sids)
    assert all(valid for _, _, valid in app.got)  # signed over the exact URL, query included
    first = fake.requests_to(VOTER)[0].sid
    assert first is not None
    assert fake.statuses(first) == ["initiated", "ringing", "in-progress", "completed"]
    turns = fake.calls[first].turns
    assert [(urlsplit(t.url).path, t.form.get("Digits"), t.twiml) for t in turns] == [
        ("/voice", None, ASK),
        ("/voice/keys", "1", THANKS),
    ]
    assert turns[1].url == f"{app.url}/voice/keys?c=7"  # the action, resolved against the webhook URL
    statuses = [f for f in app.statuses() if f["CallSid"] == first]
    assert [f["SequenceNumber"] for f in statuses] == ["0", "1", "2", "3"]
    final = statuses[-1]
    assert (final["CallDuration"], final["SipResponseCode"], final["To"], final["From"]) == ("42", "200", VOTER, OURS)
    assert "AnsweredBy" not in final  # no machine detection asked
    (second,) = sids - {first}
    assert [t.form.get("Digits") for t in fake.calls[second].turns] == [None]  # the default: nobody presses


@pytest.mark.parametrize("detection", ["Enable", "DetectMessageEnd"])
def test_machine_detection_reports_answered_by(
    app: App, fake: FakeTwilioCalls, voice: TwilioVoice, detection: str
) -> None:
    fake.for_recipient(VOTER, Answer(callbacks=CallScript(answered_by="machine_end_beep")))
    sid = voice.place(call(app, machine_detection=detection)).sid
    fake.wait_idle()
    (turn,) = fake.calls[sid].turns
    assert turn.form["AnsweredBy"] == "machine_end_beep"
    assert [f.get("AnsweredBy") for f in app.statuses()] == [None, None, "machine_end_beep", "machine_end_beep"]


@pytest.mark.parametrize(("outcome", "sip"), [("busy", "486"), ("no-answer", "487"), ("failed", "404")])
def test_unanswered_calls_end_without_a_voice_webhook(
    app: App, fake: FakeTwilioCalls, voice: TwilioVoice, outcome: str, sip: str
) -> None:
    fake.for_recipient(VOTER, Answer(callbacks=CallScript(outcome, error_code=32009 if outcome == "failed" else None)))
    sid = voice.place(call(app)).sid
    fake.wait_idle()
    assert fake.statuses(sid) == ["initiated", "ringing", outcome]
    assert not fake.calls[sid].turns
    final = app.statuses()[-1]
    assert (final["CallDuration"], final["SipResponseCode"]) == ("0", sip)
    assert final.get("ErrorCode") == ("32009" if outcome == "failed" else None)


def test_only_the_events_asked_are_posted(app: App, fake: FakeTwilioCalls) -> None:
    form = {"To": VOTER, "From": OURS, "Url": f"{app.url}/voice", "StatusCallback": f"{app.url}/status"}
    answer = requests.post(f"{fake.url}/2010-04-01/Accounts/{SID}/Calls.json", data=form, auth=(SID, TOKEN), timeout=5)
    assert (answer.status_code, answer.json()["status"]) == (201, "queued")
    fake.wait_idle()
    assert fake.statuses(answer.json()["sid"]) == ["completed"]  # Twilio's default: the final status only


def test_gather_timeouts_redirects_and_recordings(app: App, fake: FakeTwilioCalls, voice: TwilioVoice) -> None:
    app.twiml = {
        "/voice": '<Response><Gather action="/voice/keys"/><Redirect>/voice/again</Redirect></Response>',
        "/voice/again": '<Response><Gather actionOnEmptyResult="true" action="/voice/keys"/></Response>',
        "/voice/keys": '<Response><Record action="/voice/recorded" maxLength="5"/></Response>',
        "/voice/recorded": "<Response><Hangup/></Response>",
    }
    sid = voice.place(call(app)).sid
    fake.wait_idle()
    turns = fake.calls[sid].turns
    assert [(urlsplit(t.url).path, t.form.get("Digits")) for t in turns] == [
        ("/voice", None),  # the Gather timed out: the Redirect ran
        ("/voice/again", None),
        ("/voice/keys", ""),  # actionOnEmptyResult: the action, with no keys
        ("/voice/recorded", "#"),
    ]
    assert turns[-1].form["RecordingUrl"].startswith(fake.url) and turns[-1].form["RecordingDuration"] == "3"


def test_a_hang_up_ends_a_live_call(app: App, fake: FakeTwilioCalls, voice: TwilioVoice) -> None:
    answered, proceed = threading.Event(), threading.Event()

    def loop() -> str:  # a TwiML loop our app would never leave: the hang-up ends it
        answered.set()
        proceed.wait(5)
        return "<Response><Pause/><Redirect>/voice</Redirect></Response>"

    app.twiml["/voice"] = loop
    sid = voice.place(call(app)).sid
    assert answered.wait(5)
    voice.cancel(sid)
    proceed.set()
    fake.wait_idle()
    assert fake.statuses(sid)[-1] == "completed"
    assert len(fake.calls[sid].turns) == 1
    assert fake.requests[-1].get("Status") == "completed"


def test_a_hang_up_before_the_answer_cancels(app: App, voice: TwilioVoice) -> None:
    fake = FakeTwilioCalls(SID, TOKEN, callback_gap_s=0.3).start()
    slow = TwilioVoice(TwilioAccount(SID, TOKEN, api_base=fake.url, timeout_s=1.0))
    try:
        sid = slow.place(call(app)).sid
        slow.cancel(sid)
        fake.wait_idle()
        assert fake.statuses(sid) == ["initiated", "ringing", "canceled"]
        assert not fake.calls[sid].turns
        with pytest.raises(SendError) as caught:
            slow.cancel("CA" + "0" * 32)
        assert (caught.value.retryable, caught.value.code, caught.value.status) == (False, "20404", 404)
    finally:
        slow.close()
        fake.stop()


@pytest.mark.parametrize(
    ("form", "auth", "status", "code"),
    [
        ({"From": OURS, "Url": "https://x.example/v"}, (SID, TOKEN), 400, 21201),
        ({"To": VOTER, "Url": "https://x.example/v"}, (SID, TOKEN), 400, 21213),
        ({"To": VOTER, "From": OURS}, (SID, TOKEN), 400, 21205),
        ({"To": VOTER, "From": OURS, "Url": "/voice"}, (SID, TOKEN), 400, 21205),
        ({"To": VOTER, "From": OURS, "Url": "https://x.example/v", "StatusCallback": "nope"}, (SID, TOKEN), 400, 21205),
        ({"To": VOTER, "From": OURS, "Url": "https://x.example/v"}, (SID, "wrong"), 401, 20003),
        ({"To": VOTER, "From": OURS, "Url": "https://x.example/v"}, None, 401, 20003),
    ],
    ids=["no_to", "no_from", "no_url", "relative_url", "bad_callback", "bad_token", "no_auth"],
)
def test_refuses_what_twilio_refuses(fake: FakeTwilioCalls, form: dict[str, str], auth, status: int, code: int) -> None:  # type: ignore[no-untyped-def]
    answer = requests.post(f"{fake.url}/2010-04-01/Accounts/{SID}/Calls.json", data=form, auth=auth, timeout=5)
    assert answer.status_code == status
    assert (answer.json()["code"], answer.json()["status"]) == (code, status)
    assert fake.requests[0].sid is None and not fake.calls


def test_faults_and_latency(app: App, fake: FakeTwilioCalls, voice: TwilioVoice) -> None:
    fake.next_requests(Answer.rate_limited(), Answer.connection_reset(taken=True), Answer(latency_s=0.2))
    with pytest.raises(SendError) as limited:
        voice.place(call(app))
    with pytest.raises(SendError) as reset:
        voice.place(call(app))
    voice.place(call(app))
    fake.wait_idle()
    assert (limited.value.code, reset.value.code, reset.value.maybe_taken) == ("20429", "connection_lost", True)
    assert [r.status for r in fake.requests] == [429, 0, 201]
    taken = fake.requests[1].sid  # taken before the reset: the call rings all the same
    assert taken is not None and fake.statuses(taken)[-1] == "completed"


def test_scripts_are_checked() -> None:
    with pytest.raises(ValueError, match="outcome"):
        CallScript("hung-up")
    with pytest.raises(ValueError, match="answered_by"):
        CallScript(answered_by="machine")
    with pytest.raises(ValueError, match="digits"):
        CallScript(digits=("12a",))
