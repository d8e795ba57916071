"""The voice value objects' checks, and the sandbox voice provider."""

from __future__ import annotations

import re
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from ivr.providers.base import CallRequest, CallStatusUpdate, PlacedCall, VoiceRequest
from ivr.providers.sandbox_voice import SANDBOX_ACCOUNT_SID, SandboxVoice, webhook_form

VOTER, OURS = "+919876543210", "+919999900002"
VOICE_URL = "http://127.0.0.1:5000/webhooks/twilio/voice?call=3&sig=a%2Fb"
STATUS_URL = "http://127.0.0.1:5000/webhooks/twilio/call-status?call=3"


def request(**kwargs: Any) -> CallRequest:
    return CallRequest(**{"to": VOTER, "from_": OURS, "answer_url": VOICE_URL, "status_callback": STATUS_URL, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"to": "98765 43210"}, "to must be an E.164 number, got '98765 43210'"),
        ({"from_": ""}, "from_ must be an E.164 number, got ''"),
        ({"to": OURS}, "to and from_ must differ"),
        ({"answer_url": "/webhooks/twilio/voice"}, "answer_url must be an absolute http(s) URL"),
        ({"status_callback": "ftp://x.example/s"}, "status_callback must be an absolute http(s) URL"),
        ({"ring_timeout_s": 4}, "ring_timeout_s must be 5-600, got 4"),
        ({"ring_timeout_s": 601}, "ring_timeout_s must be 5-600, got 601"),
        ({"ring_timeout_s": True}, "ring_timeout_s must be 5-600, got True"),
        (
            {"machine_detection": "enable"},
            "machine_detection must be None, 'Enable' or 'DetectMessageEnd', got 'enable'",
        ),
        ({"time_limit_s": 0}, "time_limit_s must be 1-14400 or None, got 0"),
        ({"time_limit_s": 14_401}, "time_limit_s must be 1-14400 or None, got 14401"),
    ],
)
def test_call_requests_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        request(**kwargs)


def test_a_valid_call_request() -> None:
    call = request(ring_timeout_s=5, machine_detection="DetectMessageEnd", time_limit_s=14_400)
    assert (call.ring_timeout_s, call.machine_detection, call.time_limit_s) == (5, "DetectMessageEnd", 14_400)
    assert request().ring_timeout_s == 60  # Twilio's default


def test_results_are_checked() -> None:
    with pytest.raises(ValueError, match="sid must be a non-empty string"):
        PlacedCall("")
    with pytest.raises(ValueError, match="status must be one of"):
        PlacedCall("CA1", "initiated")  # Twilio's word; ours is queued
    with pytest.raises(ValueError, match="answered_by must be"):
        CallStatusUpdate("CA1", "completed", answered_by="machine_start")
    with pytest.raises(ValueError, match="direction must be"):
        VoiceRequest("CA1", VOTER, OURS, "outbound", "in-progress")


@pytest.fixture
def sandbox() -> SandboxVoice:
    return SandboxVoice("sandbox-secret", keep=2)


def test_place_returns_fresh_sids_and_hands_the_call_over() -> None:
    rang: list[tuple[PlacedCall, CallRequest]] = []
    hung_up: list[str] = []
    sandbox = SandboxVoice("s3cret", on_place=lambda placed, req: rang.append((placed, req)), on_cancel=hung_up.append)
    placed = [sandbox.place(request()) for _ in range(3)]
    assert len({p.sid for p in placed}) == 3
    assert all(re.fullmatch(r"CA[0-9a-f]{32}", p.sid) and p.status == "queued" for p in placed)
    assert rang == [(p, request()) for p in placed]
    sandbox.cancel(placed[0].sid)
    assert hung_up == [placed[0].sid]
    assert list(sandbox.placed) == [p.sid for p in placed[1:]]


def test_only_the_last_calls_are_kept(sandbox: SandboxVoice) -> None:
    sids = [sandbox.place(request()).sid for _ in range(3)]
    assert list(sandbox.placed) == sids[1:]
    with pytest.raises(KeyError):
        sandbox.webhook_form(sids[0])


def test_a_simulated_call_runs_through_the_twilio_parsers(sandbox: SandboxVoice) -> None:
    sid = sandbox.place(request()).sid
    answered = sandbox.webhook_form(sid)
    assert answered["AccountSid"] == SANDBOX_ACCOUNT_SID
    voice = sandbox.parse_voice(answered)
    assert (voice.call_sid, voice.from_phone, voice.to, voice.direction, voice.call_status) == (
        sid,
        OURS,
        VOTER,
        "outbound-api",
        "in-progress",
    )
    assert sandbox.parse_voice(sandbox.webhook_form(sid, Digits="2")).digits == "2"
    ended = sandbox.parse_status(sandbox.webhook_form(sid, status="completed", CallDuration="12"))
    assert (ended.status, ended.duration_s, ended.final) == ("completed", 12, True)
    incoming = webhook_form("CA" + "2" * 32, to=OURS, from_=VOTER, direction="inbound", status="ringing")
    assert sandbox.parse_voice(incoming).inbound


def test_verify_accepts_only_signed_sandbox_requests(sandbox: SandboxVoice) -> None:
    sid = sandbox.place(request()).sid
    form = sandbox.webhook_form(sid, Digits="1")
    signature = sandbox.sign(VOICE_URL, form)
    assert sandbox.verify_request(VOICE_URL, form, signature) is True
    assert sandbox.verify_request(VOICE_URL, {**form, "Digits": "2"}, signature) is False
    assert sandbox.verify_request(VOICE_URL.replace("call=3", "call=4"), form, signature) is False
    assert sandbox.verify_request(VOICE_URL, form, None) is False
    assert SandboxVoice("another-secret").verify_request(VOICE_URL, form, signature) is False
    # A request from a real Twilio account, even signed with the same key, is not the sandbox's.
    twilio = {**form, "AccountSid": "AC" + "0123456789abcdef" * 2}
    assert (
        sandbox.verify_request(
            VOICE_URL, twilio, RequestValidator("sandbox-secret").compute_signature(VOICE_URL, twilio)
        )
        is False
    )


def test_a_sandbox_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret must be a non-empty string"):
        SandboxVoice("")
    with pytest.raises(ValueError, match="keep must be >= 1"):
        SandboxVoice("x", keep=0)
