"""The Twilio voice provider, with the real twilio SDK.

* request shapes, validated against Twilio's own OpenAPI document served by Stoplight
  Prism (201/200 for a request that matches the schema, 422 otherwise);
* errors, against the fake Calls API on loopback (429, 5xx, stalls, resets, Twilio codes);
* reading Twilio's voice webhooks and call status callbacks, and their signatures.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from bot.channels.base import ParseError, SendError
from bot.channels.twilio_base import TwilioAccount
from ivr.providers import REGISTRY
from ivr.providers.base import CALL_STATUSES, CallRequest
from ivr.providers.sandbox_voice import SandboxVoice
from ivr.providers.twilio_voice import INVALID_NUMBER, TwilioVoice
from tests.fakes.prism import PrismHttpClient, prism_provider
from tests.fakes.twilio_calls import FakeTwilioCalls
from tests.fakes.twilio_http import free_port
from tests.fakes.twilio_rest import Answer
from tests.twilio_stubs import twilio_error

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token"
VOTER, OUR_NUMBER, VERIFIED = "+919876543210", "+15005550006", "+14155550100"
PUBLIC = "https://canvass.example.org"
VOICE_URL = f"{PUBLIC}/webhooks/twilio/voice?call=7&sig=a%2Fb%3D"
STATUS_URL = f"{PUBLIC}/webhooks/twilio/call-status?call=7"
CALL_SID = "CA" + "1" * 32


def account(api_base: str, **kwargs: Any) -> TwilioAccount:
    return TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, api_base=api_base, public_base_url=PUBLIC, **kwargs)


def request(**kwargs: Any) -> CallRequest:
    fields = {"to": VOTER, "from_": OUR_NUMBER, "answer_url": VOICE_URL, "status_callback": STATUS_URL}
    return CallRequest(**{**fields, **kwargs})


def test_providers_are_registered() -> None:
    assert dict(REGISTRY) == {"twilio": TwilioVoice, "sandbox": SandboxVoice}
    assert TwilioVoice.channel == SandboxVoice.channel == "voice"


# --- Request shapes against Twilio's OpenAPI document (Prism) -----------------------------


@pytest.fixture
def prism(prism_url: str) -> Iterator[tuple[TwilioVoice, PrismHttpClient]]:
    provider, http = prism_provider(TwilioVoice, account(prism_url))
    yield provider, http
    provider.close()


SHAPES: dict[str, tuple[CallRequest, dict[str, Any]]] = {
    "plain": (request(), {}),
    "amd_enable": (request(machine_detection="Enable"), {"MachineDetection": "Enable"}),
    "amd_message_end": (request(machine_detection="DetectMessageEnd"), {"MachineDetection": "DetectMessageEnd"}),
    "time_limit": (request(time_limit_s=600, ring_timeout_s=25), {"TimeLimit": 600, "Timeout": 25}),
    "caller_id": (request(from_=VERIFIED), {"From": VERIFIED}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SHAPES))
def test_request_shape_matches_twilio_schema(prism: tuple[TwilioVoice, PrismHttpClient], case: str) -> None:
    provider, http = prism
    call, expected = SHAPES[case]

    placed = provider.place(call)

    assert http.statuses == [201], http.statuses
    assert placed.sid.startswith("CA") and placed.status in CALL_STATUSES
    (data,) = http.sent
    assert data == {
        "To": VOTER,
        "From": OUR_NUMBER,
        "Url": VOICE_URL,
        "Method": "POST",
        "StatusCallback": STATUS_URL,
        "StatusCallbackMethod": "POST",
        # Production sends the list as repeated keys, as real Twilio expects.
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": 60,
        **expected,
    }


@pytest.mark.slow
def test_hang_up_matches_twilio_schema(prism: tuple[TwilioVoice, PrismHttpClient]) -> None:
    provider, http = prism
    provider.cancel(CALL_SID)
    assert http.statuses == [200]
    assert http.sent == [{"Status": "completed"}]


@pytest.mark.slow
@pytest.mark.parametrize(
    "create",
    [
        lambda client: client.calls.create(to=VOTER, from_=OUR_NUMBER, url=VOICE_URL, timeout="soon"),
        lambda client: client.calls.create(to=VOTER, from_=OUR_NUMBER, url=VOICE_URL, status_callback="not a uri"),
        lambda client: client.calls.create(to=None, from_=OUR_NUMBER, url=VOICE_URL),  # the SDK drops None
        lambda client: client.calls(CALL_SID).update(status="hung-up"),
    ],
    ids=["bad_timeout", "bad_status_callback", "missing_to", "bad_update_status"],
)
def test_prism_refuses_a_malformed_request(
    prism: tuple[TwilioVoice, PrismHttpClient], create: Callable[[Any], Any]
) -> None:
    """Negative control: the mock really validates (our own checks are bypassed here)."""
    provider, http = prism
    with pytest.raises(TwilioRestException):
        create(provider.client)
    assert http.statuses == [422]  # a schema violation, not 401 (auth) or 404 (route)


# --- Errors, against the fake Calls API ---------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTwilioCalls]:
    server = FakeTwilioCalls(ACCOUNT_SID, AUTH_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def voice(fake: FakeTwilioCalls) -> Iterator[TwilioVoice]:
    provider = TwilioVoice(account(fake.url, timeout_s=0.5))
    yield provider
    provider.close()


@pytest.mark.parametrize(
    ("answer", "retryable", "code", "maybe_taken"),
    [
        (Answer(status=429, body=""), True, None, False),
        (Answer.rate_limited(), True, "20429", False),
        (Answer(status=500, body="<html>Internal Server Error</html>"), True, None, False),
        (Answer(status=503, body=twilio_error(20503, 503, "Service Unavailable")), True, "20503", False),
        (Answer.stalled(), True, "timeout", True),
        (Answer.connection_reset(), True, "connection_lost", True),
        (Answer.refused(21211), False, "21211", False),
        (Answer.refused(21215), False, "21215", False),
        (Answer.refused(21610), False, "21610", False),
        (Answer(body="this is not json"), False, "bad_response", True),  # a 2xx: the call may ring
    ],
    ids=["429", "20429", "500", "503", "timeout", "reset", "21211", "21215", "21610", "not_json"],
)
def test_refusals_map_to_send_errors(
    fake: FakeTwilioCalls, voice: TwilioVoice, answer: Answer, retryable: bool, code: str | None, maybe_taken: bool
) -> None:
    fake.next_requests(answer)
    started = time.monotonic()
    with pytest.raises(SendError) as caught:
        voice.place(request())
    assert time.monotonic() - started < 2.0  # the explicit HTTP timeout holds
    error = caught.value
    assert (error.retryable, error.code, error.maybe_taken) == (retryable, code, maybe_taken)
    assert voice.place(request()).sid.startswith("CA")  # the pool recovers


def test_invalid_number_codes() -> None:
    assert {"21211", "21214", "21217", "13223", "13224"} == INVALID_NUMBER
    assert "21215" not in INVALID_NUMBER  # a permission to enable, not a bad number


def test_a_refused_connection_is_retryable_and_sent_nothing() -> None:
    provider = TwilioVoice(account(f"http://127.0.0.1:{free_port()}", timeout_s=1.0))
    try:
        with pytest.raises(SendError) as caught:
            provider.place(request())
    finally:
        provider.close()
    assert (caught.value.retryable, caught.value.code, caught.value.maybe_taken) == (True, "connection", False)


def test_place_returns_the_sid_and_status(fake: FakeTwilioCalls, voice: TwilioVoice) -> None:
    placed = voice.place(request())
    (sent,) = fake.requests
    assert (placed.sid, placed.status) == (sent.sid, "queued")
    assert sent.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]


# --- Webhooks -----------------------------------------------------------------------------


@pytest.fixture
def offline() -> Iterator[TwilioVoice]:
    provider = TwilioVoice(account("http://127.0.0.1:9"))  # never contacted
    yield provider
    provider.close()


def voice_form(**fields: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": CALL_SID,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "From": OUR_NUMBER,
        "To": VOTER,
        "Caller": OUR_NUMBER,
        "Called": VOTER,
        **fields,
    }


def present(form: dict[str, str]) -> dict[str, str]:
    """The form without its empty fields: a field set to "" in a case is one Twilio left out."""
    return {name: value for name, value in form.items() if value}


def status_form(**fields: str) -> dict[str, str]:
    return voice_form(**{"CallbackSource": "call-progress-events", "SequenceNumber": "3", **fields})


@pytest.mark.parametrize(("twilio_status", "ours"), [*((s, s) for s in CALL_STATUSES), ("initiated", "queued")])
def test_parse_status_every_status(offline: TwilioVoice, twilio_status: str, ours: str) -> None:
    update = offline.parse_status(status_form(CallStatus=twilio_status))
    assert (update.call_sid, update.status, update.answered_by, update.sequence_number) == (CALL_SID, ours, None, 3)
    assert update.final is (ours in ("completed", "busy", "no-answer", "failed", "canceled"))


ANSWERED_BY = [
    ("human", "human"),
    ("machine_start", "machine"),
    ("machine_end_beep", "machine"),
    ("machine_end_silence", "machine"),
    ("machine_end_other", "machine"),
    ("fax", "machine"),
    ("unknown", "unknown"),
    ("", None),
]


@pytest.mark.parametrize(("twilio", "ours"), ANSWERED_BY)
def test_answered_by_mapping(offline: TwilioVoice, twilio: str, ours: str | None) -> None:
    update = offline.parse_status(status_form(CallStatus="completed", AnsweredBy=twilio))
    voice = offline.parse_voice(voice_form(AnsweredBy=twilio))
    assert (update.answered_by, voice.answered_by) == (ours, ours)
    assert update.amd_result == voice.amd_result == (twilio or None)


def test_parse_status_completed_keeps_everything(offline: TwilioVoice) -> None:
    form = status_form(
        CallStatus="completed",
        CallDuration="42",
        SipResponseCode="200",
        Timestamp="Tue, 31 Aug 2010 20:36:44 +0530",
        ErrorCode="",
    )
    update = offline.parse_status(form)
    assert (update.duration_s, update.sip_response_code, update.error_code) == (42, 200, None)
    assert update.timestamp == dt.datetime(2010, 8, 31, 15, 6, 44, tzinfo=dt.UTC)
    assert update.raw == form
    failed = offline.parse_status(status_form(CallStatus="failed", ErrorCode="32009", SipResponseCode="404"))
    assert (failed.status, failed.error_code, failed.sip_response_code) == ("failed", "32009", 404)


def test_parse_voice_answer_gather_and_record(offline: TwilioVoice) -> None:
    answered = offline.parse_voice(voice_form())
    assert (answered.call_sid, answered.from_phone, answered.to, answered.direction) == (
        CALL_SID,
        OUR_NUMBER,
        VOTER,
        "outbound-api",
    )
    assert (answered.call_status, answered.digits, answered.recording_url, answered.inbound) == (
        "in-progress",
        "",
        None,
        False,
    )
    assert offline.parse_voice(voice_form(Digits="12#")).digits == "12#"
    recorded = offline.parse_voice(
        voice_form(Digits="hangup", RecordingUrl="https://api.twilio.com/rec/RE1", RecordingDuration="7")
    )
    assert (recorded.digits, recorded.recording_url, recorded.recording_duration_s) == (
        "hangup",
        "https://api.twilio.com/rec/RE1",
        7,
    )
    incoming = offline.parse_voice(voice_form(Direction="inbound", CallStatus="ringing", From="anonymous"))
    assert (incoming.inbound, incoming.call_status, incoming.from_phone) == (True, "ringing", None)


BAD_FIELDS = [
    # (webhook, fields changed: "" leaves the field out, the field the error names)
    ("status", {"CallDuration": "4.5"}, "CallDuration"),
    ("status", {"SipResponseCode": "abc"}, "SipResponseCode"),
    ("status", {"SequenceNumber": "-1"}, "SequenceNumber"),
    ("status", {"Timestamp": "yesterday"}, "Timestamp"),
    ("voice", {"To": ""}, "To"),
    ("voice", {"To": "98765 43210"}, "To"),
    ("voice", {"Direction": ""}, "Direction"),
    ("voice", {"Direction": "sideways"}, "Direction"),
    ("voice", {"Digits": "1a"}, "Digits"),
    ("voice", {"RecordingUrl": "ftp://x/rec"}, "RecordingUrl"),
    ("voice", {"RecordingDuration": "long"}, "RecordingDuration"),
    *(
        (kind, fields, field)
        for kind in ("status", "voice")
        for fields, field in [
            ({"CallSid": ""}, "CallSid"),
            ({"CallStatus": ""}, "CallStatus"),
            ({"CallStatus": "answered"}, "CallStatus"),  # an event's name, not a status
            ({"CallStatus": "exploded"}, "CallStatus"),
            ({"AnsweredBy": "machine"}, "AnsweredBy"),  # ours, not Twilio's
            ({"AnsweredBy": "robot"}, "AnsweredBy"),
        ]
    ),
]


@pytest.mark.parametrize(("kind", "fields", "field"), BAD_FIELDS)
def test_parsers_name_the_bad_field(offline: TwilioVoice, kind: str, fields: dict[str, str], field: str) -> None:
    parse = offline.parse_status if kind == "status" else offline.parse_voice
    with pytest.raises(ParseError) as caught:
        parse(present((status_form if kind == "status" else voice_form)(**fields)))
    assert caught.value.field == field


@pytest.mark.parametrize(
    "url",
    [
        VOICE_URL,  # an encoded query: signed as Twilio sends it
        f"{PUBLIC}/webhooks/twilio/voice/step?call=7&n=2&sig=x%2By%3D%3D",
        f"{PUBLIC}/webhooks/twilio/call-status",
    ],
)
def test_verify_request(offline: TwilioVoice, url: str) -> None:
    form = voice_form(Digits="1")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    assert offline.verify_request(url, form, signature) is True
    assert offline.verify_request(url, {**form, "Digits": "2"}, signature) is False
    assert offline.verify_request(url, {**form, "Extra": "1"}, signature) is False
    assert offline.verify_request(url.replace("https://", "http://"), form, signature) is False
    assert offline.verify_request(url.replace("canvass.example.org", "evil.example"), form, signature) is False
    assert offline.verify_request(url, form, None) is False
    assert offline.verify_request(url, form, "") is False
    other = RequestValidator("another-token").compute_signature(url, form)
    assert offline.verify_request(url, form, other) is False


def test_verify_request_with_the_query_decoded_fails(offline: TwilioVoice) -> None:
    form = voice_form()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(VOICE_URL, form)
    decoded = VOICE_URL.replace("%2F", "/").replace("%3D", "=")
    assert offline.verify_request(decoded, form, signature) is False  # the URL must be the one Twilio called
