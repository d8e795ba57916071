"""The voice webhooks' lane below Flask (``web.voice_lane``).

Requests go through the app's real WSGI stack (the test client), signed as Twilio signs
them: the lane answers the common case, and hands everything else to the Flask views.
"""

from __future__ import annotations

import functools
import logging

import pytest
from sqlalchemy import select

from bot.models import FlowSession
from ivr.endings import finish_calls
from ivr.models import Call, CallStep
from ivr.quickstep import QuickSteps
from tests.ivr import test_voice_webhooks
from tests.ivr.test_voice_webhooks import BASE, _outbound, action, form, post, said, twiml

app = test_voice_webhooks.app
VIEWS = ("voice.answer", "voice.step", "voice.call_status")


@pytest.fixture
def view_calls(app):  # type: ignore[no-untyped-def]
    """The views that answered a request (the lane answered the others)."""
    calls: list[str] = []
    for name in VIEWS:
        real = app.view_functions[name]

        def counted(*args, _real=real, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _real(*args, **kwargs)

        app.view_functions[name] = functools.wraps(real)(counted)  # keeps its @public mark
    return calls


def test_a_whole_incoming_call_is_answered_below_flask(app, client, view_calls, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="canvass.request"):
        response = post(client, f"{BASE}/webhooks/twilio/voice", form(CallStatus="ringing"))
        root = twiml(response)
        assert said(root)[0].startswith("Namaste. This is a short survey")
        for digit in "123":
            root = twiml(post(client, action(root), form(Digits=digit)))
        assert root[-1].tag == "Hangup"
        status = post(client, f"{BASE}/webhooks/twilio/call-status", form(CallStatus="completed", CallDuration="12"))
    assert status.status_code == 204 and status.get_data() == b""
    assert view_calls == []
    lines = [r for r in caplog.records if r.name == "canvass.request"]
    assert [(r.route, r.status) for r in lines] == [
        ("/webhooks/twilio/voice", 200),
        ("/webhooks/twilio/voice/step", 200),
        ("/webhooks/twilio/voice/step", 200),
        ("/webhooks/twilio/voice/step", 200),
        ("/webhooks/twilio/call-status", 204),
    ]
    assert lines[0].request_id == response.headers["X-Request-Id"]
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert finish_calls(app.extensions["canvass"]) == 1
    with app.extensions["canvass"].db.session() as db:
        call = db.scalars(select(Call)).one()
        fs = db.get(FlowSession, call.session_id)
        assert (call.status, call.duration_s, fs.status, fs.end_reason) == ("completed", 12, "ended", "completed")


@pytest.mark.parametrize("case", ["bad_signature", "unsigned"])
def test_a_request_without_a_good_signature_goes_to_the_view(app, client, view_calls, case) -> None:  # type: ignore[no-untyped-def]
    signature = "bm90IGEgc2lnbmF0dXJl" if case == "bad_signature" else None
    response = post(client, f"{BASE}/webhooks/twilio/voice", form(), signature=signature)
    assert response.status_code == 403 and view_calls == ["voice.answer"]
    with app.extensions["canvass"].db.session() as db:
        assert db.scalar(select(Call)) is None


def test_a_call_we_placed_is_answered_by_the_view(app, client, view_calls) -> None:  # type: ignore[no-untyped-def]
    _, url = _outbound(app)
    root = twiml(post(client, url, form(Direction="outbound-api", From="+911140000000", To="+919876543210")))
    assert said(root)[0].startswith("Namaste. This is a short survey")
    assert view_calls == ["voice.answer"]


def test_an_error_in_the_lane_is_answered_by_the_view(app, client, view_calls, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form()))
    real, failures = QuickSteps.step, [RuntimeError("the database went away")]

    def flaky(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(QuickSteps, "step", flaky)
    root = twiml(post(client, action(root), form(Digits="1")))
    assert said(root) == ["Do you know where your booth is? Press 1 for yes, 2 for no."]
    # The view ran the fast path again, which stored the step once.
    assert view_calls == ["voice.step"]
    with app.extensions["canvass"].db.session() as db:
        assert [s.step for s in db.scalars(select(CallStep).order_by(CallStep.step))] == [0, 1]
