"""A scripted call through Twilio's voice webhooks, each request signed by the SDK's RequestValidator.

answer -> digits -> a wrong digit -> silence -> completion -> the status callback; then
the call's funnel rows and answers. Plus the paths a caller must never hear as a 500:
bad references, repeated requests, a fault while running the flow; and keypad opt-out,
answering machines, withheld numbers and missed-call lines.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.engine import load_path
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import Answer, ConsentEvent, Contact, FlowSession, FunnelEvent, Message, Sender
from bot.timeline import timeline
from ivr.calls import CallDesk
from ivr.endings import finish_calls
from ivr.links import CallLinks
from ivr.models import Call, CallEvent, VoiceLine
from ivr.quickstep import QuickSteps
from tests.bot.test_conversations import ROOT

TOKEN = "voice-webhook-token"
BASE = "https://canvass.example.org"
ACCOUNT = "AC" + "0123456789abcdef" * 2
LINE = "+911140000000"
VOTER = "+919876543210"
CALL_SID = "CA" + "7" * 32


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    application = make_app(
        CANVASS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN=TOKEN,
        PUBLIC_BASE_URL=BASE,
        CANVASS_TTS="twilio",
    )
    with application.extensions["canvass"].db.session() as db:
        for name in ("ivr_survey", "booth_locator"):
            path = ROOT / "flows" / f"{name}.yaml"
            store(db, load_path(path), path.read_text())
        db.add(VoiceLine(address=LINE, flow_name="ivr_survey"))
    clear_cache()
    return application


def form(**fields: str) -> dict[str, str]:
    base = {
        "AccountSid": ACCOUNT,
        "CallSid": CALL_SID,
        "From": VOTER,
        "To": LINE,
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    return {**base, **fields}


def post(client, url: str, fields: dict[str, str], *, signature: str | None = "sign"):  # type: ignore[no-untyped-def]
    """POST ``fields`` to an absolute public ``url`` the way Twilio does, signed."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {}
    if signature == "sign":
        signature = RequestValidator(TOKEN).compute_signature(url, fields)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(path, data=urlencode(fields), headers=headers, content_type="application/x-www-form-urlencoded")


def twiml(response) -> ET.Element:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    return ET.fromstring(response.get_data(as_text=True))


def said(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter("Say")]


def action(root: ET.Element) -> str:
    gather = root.find("Gather")
    assert gather is not None, ET.tostring(root)
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text == gather.get("action")
    return gather.get("action", "")


def count(app, model, *where) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["canvass"].db.session() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where)) or 0


def end_call(app, client, **fields: str) -> None:  # type: ignore[no-untyped-def]
    """The final status callback, then the scheduler's ``call-ends`` round that applies it."""
    assert post(client, f"{BASE}/webhooks/twilio/call-status", form(**fields)).status_code == 204
    finish_calls(app.extensions["canvass"])


def test_a_scripted_call_answers_retries_and_completes(app, client) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form(CallStatus="ringing")))
    assert said(root)[0].startswith("Namaste. This is a short survey")
    assert root.find("Gather").get("numDigits") == "1"
    first = action(root)

    root = twiml(post(client, first, form(Digits="1")))  # will vote: yes
    assert said(root) == ["Do you know where your booth is? Press 1 for yes, 2 for no."]
    second = action(root)

    # A repeated request (Twilio retried) gets the same document, and moves nothing.
    again = twiml(post(client, first, form(Digits="1")))
    assert ET.tostring(again) == ET.tostring(root)

    root = twiml(post(client, second, form(Digits="7")))  # a wrong key: the re-prompt
    assert said(root)[0] == "Sorry, I did not understand that."
    assert said(root)[1].startswith("Do you know where your booth is?")
    root = twiml(post(client, action(root), form()))  # silence: no Digits at all
    assert said(root)[1].startswith("Do you know where your booth is?")
    root = twiml(post(client, action(root), form(Digits="2")))
    assert said(root)[0].startswith("How will you get there?")
    root = twiml(post(client, action(root), form(Digits="3")))
    assert said(root) == ["Thank you for your answers. Your vote matters."]
    assert root[-1].tag == "Hangup"

    status = form(CallStatus="completed", CallDuration="47", Timestamp="Sun, 29 Nov 2026 06:41:00 +0000")
    assert post(client, f"{BASE}/webhooks/twilio/call-status", status).status_code == 204
    # The webhook recorded the end; the flow ends in the scheduler's next call-ends round.
    with app.extensions["canvass"].db.session() as db:
        call = db.scalar(select(Call))
        assert call.status == "completed" and call.settle_due_at is not None
        assert db.get(FlowSession, call.session_id).status == "active"
    assert finish_calls(app.extensions["canvass"]) == 1
    assert finish_calls(app.extensions["canvass"]) == 0

    with app.extensions["canvass"].db.session() as db:
        call = db.scalar(select(Call))
        assert call.settle_due_at is None
        assert (call.status, call.duration_s, call.direction, call.answered_by) == ("completed", 47, "inbound", "human")
        fs = db.get(FlowSession, call.session_id)
        assert (fs.status, fs.end_reason, fs.channel) == ("ended", "completed", "voice")
        steps = list(
            db.scalars(select(FunnelEvent.step).where(FunnelEvent.session_id == fs.id).order_by(FunnelEvent.id))
        )
        assert steps == ["started", "q1", "q2", "q3", "completed"]
        answers = dict(db.execute(select(Answer.name, Answer.value).where(Answer.session_id == fs.id)).all())
        assert answers == {"will_vote": "1", "knows_booth": "2", "transport": "3"}
        pressed = list(db.scalars(select(Message.body).where(Message.direction == "in").order_by(Message.id)))
        assert pressed == ["1", "7", "2", "3"]
        spoken = db.scalar(select(func.count()).select_from(Message).where(Message.direction == "out"))
        pending = db.scalar(select(func.count()).select_from(Message).where(Message.status == "pending"))
        assert spoken > 0 and pending == 0  # spoken on the call, never queued as messages
        assert db.scalar(select(func.count()).select_from(CallEvent)) == 1
        # The call is on the voter's timeline, with what was said and pressed.
        entries = timeline(db, call.contact_id)
        calls = [e for e in entries if e["kind"] == "call"]
        assert calls and calls[0]["status"] == "completed" and calls[0]["duration_s"] == 47
        assert any(e["kind"] == "message" and e["channel"] == "voice" and e["body"] == "7" for e in entries)


def test_retries_run_out_into_the_failure_branch(app, client) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form()))
    for _ in range(3):  # retries: 2 -> the third silence takes on_fail
        root = twiml(post(client, action(root), form()))
    assert said(root) == ["Sorry we could not hear you. Goodbye."]
    assert root[-1].tag == "Hangup"


def test_the_voter_hanging_up_ends_the_flow_where_they_were(app, client) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form()))
    post(client, action(root), form(Digits="1"))
    end_call(app, client, CallStatus="completed", CallDuration="9")
    with app.extensions["canvass"].db.session() as db:
        call = db.scalar(select(Call))
        fs = db.get(FlowSession, call.session_id)
        assert (fs.status, fs.end_reason, call.last_node) == ("ended", "call_ended", "knows_booth")


@pytest.mark.parametrize("signature", [None, "bad-signature"])
def test_an_unsigned_or_badly_signed_request_changes_nothing(app, client, signature) -> None:  # type: ignore[no-untyped-def]
    response = post(client, f"{BASE}/webhooks/twilio/voice", form(), signature=signature)
    assert response.status_code == 403
    assert count(app, Call) == 0


def test_a_forged_step_reference_gets_an_apology_not_a_500(app, client) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form()))
    forged = action(root).replace("&s=", "&s=0").rsplit("&s=", 1)[0] + "&s=" + "0" * 16
    root = twiml(post(client, forged, form(Digits="1")))
    assert said(root) and "Sorry, something went wrong" in said(root)[0]
    assert root[-1].tag == "Hangup"


def test_a_fault_while_running_the_flow_still_answers_valid_twiml(app, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form()))

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    # Both paths of a step fail: the fast one (ivr.quickstep) hands over to the full one, which apologises.
    monkeypatch.setattr(QuickSteps, "step", broken)
    monkeypatch.setattr(CallDesk, "step", broken)
    root = twiml(post(client, action(root), form(Digits="1")))
    assert "Sorry, something went wrong" in said(root)[0] and root[-1].tag == "Hangup"


def test_a_fault_in_the_fast_path_hands_the_step_to_the_full_path(app, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form()))

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(QuickSteps, "_store", broken)
    root = twiml(post(client, action(root), form(Digits="1")))
    assert said(root) == ["Do you know where your booth is? Press 1 for yes, 2 for no."]


def test_a_withheld_number_is_told_so(app, client) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form(From="anonymous")))
    assert "withheld" in said(root)[0] and root[-1].tag == "Hangup"
    assert count(app, Contact) == 0


def test_a_number_without_a_line_says_it_takes_no_calls(app, client) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form(To="+911140009999")))
    assert "does not take calls" in said(root)[0]


def _outbound(app, **call_fields) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """A call we placed (as a campaign would): its id and the answer URL Twilio was given."""
    rt = app.extensions["canvass"]
    with rt.db.session() as db:
        contact = Contact(phone=VOTER, fields={}, tags=[])
        db.add(contact)
        db.flush()
        call = Call(contact_id=contact.id, direction="outbound", flow_name="ivr_survey", sid=CALL_SID, **call_fields)
        db.add(call)
        db.flush()
        call_id = call.id
    return call_id, CallLinks(BASE, rt.settings.secret_key).answer(call_id)


def test_pressing_the_opt_out_key_records_it_in_the_consent_ledger(app, client) -> None:  # type: ignore[no-untyped-def]
    _, answer = _outbound(app, opt_out_digit="9")
    root = twiml(post(client, answer, form(Direction="outbound-api", From=LINE, To=VOTER)))
    root = twiml(post(client, action(root), form(Digits="9")))
    assert said(root) == ["You will get no more calls from us. Goodbye."] and root[-1].tag == "Hangup"
    with app.extensions["canvass"].db.session() as db:
        event = db.scalar(select(ConsentEvent))
        assert (event.status, event.source, event.channel) == ("opted_out", "keypad", "voice")
        assert db.scalar(select(Contact.consent)) == "opted_out"


@pytest.mark.parametrize(
    ("on_machine", "expected"),
    [("hangup", []), ("message", ["This is your election office. Please vote on 20 November."])],
)
def test_an_answering_machine_is_hung_up_on_or_left_a_message(app, client, on_machine, expected) -> None:  # type: ignore[no-untyped-def]
    _, answer = _outbound(
        app, on_machine=on_machine, machine_message="This is your election office. Please vote on 20 November."
    )
    fields = form(Direction="outbound-api", From=LINE, To=VOTER, AnsweredBy="machine_end_beep")
    root = twiml(post(client, answer, fields))
    assert said(root) == expected and root[-1].tag == "Hangup" and root.find("Gather") is None
    with app.extensions["canvass"].db.session() as db:
        assert db.scalar(select(Call.answered_by)) == "machine"
        assert db.scalar(select(func.count()).select_from(FlowSession)) == 0


def test_a_human_on_a_machine_detecting_call_hears_the_flow(app, client) -> None:  # type: ignore[no-untyped-def]
    _, answer = _outbound(app, on_machine="hangup")
    root = twiml(post(client, answer, form(Direction="outbound-api", From=LINE, To=VOTER, AnsweredBy="human")))
    assert root.find("Gather") is not None


def test_an_answer_url_of_another_call_is_refused(app, client) -> None:  # type: ignore[no-untyped-def]
    call_id, answer = _outbound(app)
    other = answer.replace(f"c={call_id}", f"c={call_id + 1}")
    root = twiml(post(client, other, form(Direction="outbound-api", From=LINE, To=VOTER)))
    assert "Sorry, something went wrong" in said(root)[0]


def test_a_missed_call_line_rejects_the_call_and_starts_its_flow_by_sms(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["canvass"].db.session() as db:
        db.add(VoiceLine(address="+911140000001", missed_call=True, missed_call_flow="booth_locator"))
        db.add(Sender(provider="twilio", channel="sms", address="+919999900002", healthy=True))
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form(To="+911140000001")))
    assert [el.tag for el in root] == ["Reject"] and root[0].get("reason") == "busy"
    with app.extensions["canvass"].db.session() as db:
        fs = db.scalar(select(FlowSession))
        assert (fs.flow_name, fs.channel) == ("booth_locator", "sms")
        assert db.scalar(select(func.count()).select_from(Message).where(Message.status == "pending")) >= 1
        assert db.scalar(select(Call.status)) == "canceled"
    assert any(job.decode().startswith("send-") for job in redis.lrange("rq:queue:high", 0, -1))


def test_a_missed_call_line_can_call_the_voter_back(app, client, redis) -> None:  # type: ignore[no-untyped-def]
    from ivr import placing

    rt = app.extensions["canvass"]
    with rt.db.session() as db:
        db.add(
            VoiceLine(
                address="+911140000002", missed_call=True, missed_call_flow="ivr_survey", missed_call_channel="voice"
            )
        )
        db.add(Sender(provider="sandbox", channel="voice", address="+919999900003", healthy=True))
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form(To="+911140000002")))
    assert [el.tag for el in root] == ["Reject"]
    with rt.db.session() as db:
        back = db.scalar(select(Call).where(Call.direction == "outbound"))
        assert (back.status, back.sid, back.flow_name) == ("queued", None, "ivr_survey")
    assert f"call-back-{back.id}".encode() in redis.lrange("rq:queue:high", 0, -1)
    try:
        assert placing.place_callback(rt.db, rt.settings, rt.redis, back.id) == "placed"
        assert placing.place_callback(rt.db, rt.settings, rt.redis, back.id) == "already"  # the job ran twice
    finally:
        placing.close_providers()
    with rt.db.session() as db:
        assert db.get(Call, back.id).sid.startswith("CA")


def test_a_recording_ended_by_hanging_up_is_kept(app, client) -> None:  # type: ignore[no-untyped-def]
    text = """
flow: voice_note
channels: [voice]
start: note
nodes:
  note:
    record: {prompt: "Leave your message after the beep.", save: message}
    next: thanks
  thanks:
    say: "Thank you."
    end: true
"""
    from bot.engine import load_text

    with app.extensions["canvass"].db.session() as db:
        store(db, load_text(text, "voice_note.yaml"), text)
        db.add(VoiceLine(address="+911140000005", flow_name="voice_note"))
    clear_cache()
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form(To="+911140000005")))
    record = root.find("Record")
    assert record is not None
    # The voter hangs up while recording: the completed callback comes first, then the recording.
    post(client, f"{BASE}/webhooks/twilio/call-status", form(To="+911140000005", CallStatus="completed"))
    recording = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
    root = twiml(post(client, record.get("action"), form(To="+911140000005", RecordingUrl=recording, Digits="hangup")))
    assert root[-1].tag == "Hangup"
    with app.extensions["canvass"].db.session() as db:
        assert db.scalar(select(Answer.value).where(Answer.name == "message")) == recording
        fs = db.scalar(select(FlowSession).where(FlowSession.flow_name == "voice_note"))
        assert fs.status == "ended"
