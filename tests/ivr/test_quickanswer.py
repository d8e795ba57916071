"""The fast paths of an incoming call's answer (``ivr.quickanswer``) and of a call's end (``ivr.quickstatus``).

Runs on SQLite and PostgreSQL, through the real webhooks with requests signed as Twilio
signs them. Each test makes the full path fail where the fast path should have answered,
so a request that quietly fell back would fail the test.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

from bot.engine import load_text
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import Answer, Contact, ContactTag, FlowSession, FunnelEvent, Sender
from ivr.calls import CallDesk
from ivr.endings import finish_calls
from ivr.models import Call, CallEvent, CallStep
from tests.ivr import test_voice_webhooks
from tests.ivr.test_voice_webhooks import BASE, CALL_SID, VOTER, action, count, form, post, said, twiml

app = test_voice_webhooks.app
ANSWER_URL = f"{BASE}/webhooks/twilio/voice"
STATUS_URL = f"{BASE}/webhooks/twilio/call-status"

GREETER = """\
flow: voice_greeter
language: en
channels: [voice]
start: hello
nodes:
  hello:
    split:
      - {when: "'volunteer' in contact.tags", next: volunteer}
    next: q
  volunteer:
    say: "Welcome back, volunteer {{ contact.name }}."
    next: q
  q:
    ask: "Press 1 if you will vote."
    choices:
      - {key: "1", words: [yes], label: "Yes"}
    save: will_vote
    next: bye
  bye:
    say: "Thank you."
    end: true
"""


@pytest.fixture
def no_full_answer(monkeypatch):  # type: ignore[no-untyped-def]
    """The full path of an incoming call fails: only the fast path can answer."""

    def refused(self, req):  # type: ignore[no-untyped-def]
        raise AssertionError("the full path answered an incoming call the fast path should have")

    monkeypatch.setattr(CallDesk, "_incoming", refused)


def _line(app, address: str, flow: str, text: str | None = None) -> None:  # type: ignore[no-untyped-def]
    from ivr.models import VoiceLine

    with app.extensions["canvass"].db.session() as db:
        if text is not None:
            store(db, load_text(text, f"{flow}.yaml"), text)
        db.add(VoiceLine(address=address, flow_name=flow))
        db.add(Sender(provider="twilio", channel="voice", address=address, healthy=True))
    clear_cache()


def test_a_new_caller_is_answered_on_the_fast_path(app, client, no_full_answer) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, ANSWER_URL, form(CallStatus="ringing")))
    assert said(root)[0].startswith("Namaste. This is a short survey")
    with app.extensions["canvass"].db.session() as db:
        contact = db.scalars(select(Contact)).one()
        assert contact.phone == VOTER and contact.last_seen_at is not None and contact.consent == "unknown"
        call = db.scalars(select(Call)).one()
        assert (call.direction, call.sid, call.status) == ("inbound", CALL_SID, "in-progress")
        assert call.answered_by == "human"
        assert call.step == 0 and call.session_id is not None
        fs = db.get(FlowSession, call.session_id)
        assert (fs.flow_name, fs.channel, fs.status, fs.contact_id) == ("ivr_survey", "voice", "active", contact.id)
        step = db.scalars(select(CallStep)).one()
        assert (step.call_id, step.step) == (call.id, 0)
    # The keys go on as on any call, and the whole call lands in the flow's tables at its end.
    for digit in "123":
        root = twiml(post(client, action(root), form(Digits=digit)))
    assert root[-1].tag == "Hangup"
    assert post(client, STATUS_URL, form(CallStatus="completed", CallDuration="20")).status_code == 204
    assert finish_calls(app.extensions["canvass"]) == 1
    with app.extensions["canvass"].db.session() as db:
        fs = db.scalars(select(FlowSession)).one()
        assert (fs.status, fs.end_reason) == ("ended", "completed")
        steps = list(db.scalars(select(FunnelEvent.step).order_by(FunnelEvent.id)))
        assert steps == ["started", "q1", "q2", "q3", "completed"]
        assert {a.name: a.value for a in db.scalars(select(Answer))} == {
            "will_vote": "1",
            "knows_booth": "2",
            "transport": "3",
        }


def test_a_known_caller_keeps_their_contact_and_the_flow_sees_their_tags(app, client, no_full_answer) -> None:  # type: ignore[no-untyped-def]
    line = "+911140000077"
    _line(app, line, "voice_greeter", GREETER)
    with app.extensions["canvass"].db.session() as db:
        contact = Contact(phone=VOTER, name="Asha", fields={}, tags=[ContactTag(name="volunteer")])
        db.add(contact)
    root = twiml(post(client, ANSWER_URL, form(To=line)))
    assert said(root)[0] == "Welcome back, volunteer Asha."
    with app.extensions["canvass"].db.session() as db:
        contact = db.scalars(select(Contact)).one()
        assert contact.last_seen_at is not None
        call = db.scalars(select(Call)).one()
        assert call.contact_id == contact.id
        assert call.sender_id == db.scalar(select(Sender.id).where(Sender.address == line))


def test_twilio_asking_again_gets_the_same_document_and_one_call(app, client) -> None:  # type: ignore[no-untyped-def]
    first = twiml(post(client, ANSWER_URL, form()))
    again = twiml(post(client, ANSWER_URL, form()))
    assert ET.tostring(again) == ET.tostring(first)
    assert count(app, Call) == 1 and count(app, FlowSession) == 1 and count(app, Contact) == 1


def test_two_copies_at_once_make_one_call(app, client) -> None:  # type: ignore[no-untyped-def]
    rt = app.extensions["canvass"]
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: the copies cannot race there")
    documents: list[bytes] = []

    def answer() -> None:
        with app.test_client() as own:
            documents.append(ET.tostring(twiml(post(own, ANSWER_URL, form()))))

    threads = [threading.Thread(target=answer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(documents) == 4 and len(set(documents)) == 1
    assert count(app, Call) == 1 and count(app, Contact) == 1


def test_a_flow_that_ends_at_once_is_applied_at_once(app, client, no_full_answer) -> None:  # type: ignore[no-untyped-def]
    line = "+911140000078"
    text = "flow: voice_hello\nlanguage: en\nchannels: [voice]\nstart: hi\nnodes:\n  hi: {say: Hello., end: true}\n"
    _line(app, line, "voice_hello", text)
    root = twiml(post(client, ANSWER_URL, form(To=line)))
    assert said(root) == ["Hello."] and root[-1].tag == "Hangup"
    assert count(app, CallStep) == 0
    with app.extensions["canvass"].db.session() as db:
        fs = db.scalars(select(FlowSession)).one()
        assert (fs.status, fs.end_reason) == ("ended", "completed")


def test_the_end_is_recorded_then_applied_and_a_late_step_sees_it(app, client) -> None:  # type: ignore[no-untyped-def]
    root = twiml(post(client, ANSWER_URL, form()))
    gather = action(root)
    assert post(client, STATUS_URL, form(CallStatus="completed", CallDuration="5")).status_code == 204
    with app.extensions["canvass"].db.session() as db:
        call = db.scalars(select(Call)).one()
        assert (call.status, call.duration_s) == ("completed", 5)
        assert call.ended_at is not None and call.settle_due_at is not None
        assert db.scalars(select(CallEvent)).one().applied
    # A request of the call before the scheduler's round: it applies the end first.
    late = twiml(post(client, gather, form(Digits="1")))
    assert late[-1].tag == "Hangup"
    assert count(app, Answer) == 0
    with app.extensions["canvass"].db.session() as db:
        call = db.scalars(select(Call)).one()
        fs = db.get(FlowSession, call.session_id)
        assert call.settle_due_at is None and (fs.status, fs.end_reason) == ("ended", "call_ended")
    assert finish_calls(app.extensions["canvass"]) == 0


def test_a_repeated_or_foreign_status_takes_the_full_path(app, client) -> None:  # type: ignore[no-untyped-def]
    twiml(post(client, ANSWER_URL, form()))
    post(client, STATUS_URL, form(CallStatus="completed"))
    # Twilio retried: the full path keeps the callback (not applied) and, loading the
    # call, applies the end the first one recorded.
    post(client, STATUS_URL, form(CallStatus="completed"))
    with app.extensions["canvass"].db.session() as db:
        assert [e.applied for e in db.scalars(select(CallEvent).order_by(CallEvent.id))] == [True, False]
        assert db.scalars(select(FlowSession)).one().status == "ended"
    assert finish_calls(app.extensions["canvass"]) == 0
    # A status for a call nobody knows is the full path's (it logs it and stores nothing).
    post(client, STATUS_URL, form(CallSid="CA" + "9" * 32, CallStatus="completed"))
    assert count(app, CallEvent) == 2


def test_a_call_whose_end_fails_to_apply_holds_back_no_other(app, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sids = ["CA" + str(n) * 32 for n in (1, 2, 3)]
    for sid in sids:
        twiml(post(client, ANSWER_URL, form(CallSid=sid)))
        post(client, STATUS_URL, form(CallSid=sid, CallStatus="completed"))
    with app.extensions["canvass"].db.session() as db:
        broken = db.scalar(select(Call.id).where(Call.sid == sids[1]))
    real = CallDesk.finish

    def finish(self, call_ids):  # type: ignore[no-untyped-def]
        found = real(self, call_ids)  # applied, then the failure: the transaction undoes it
        if broken in call_ids:
            raise RuntimeError("a flow that cannot end")
        return found

    monkeypatch.setattr(CallDesk, "finish", finish)
    assert finish_calls(app.extensions["canvass"]) == 2
    with app.extensions["canvass"].db.session() as db:
        rows = db.execute(
            select(Call.sid, Call.settle_due_at, FlowSession.status).join(
                FlowSession, FlowSession.id == Call.session_id
            )
        ).all()
        state = {sid: (due is not None, status) for sid, due, status in rows}
    assert state == {sids[0]: (False, "ended"), sids[1]: (True, "active"), sids[2]: (False, "ended")}
    monkeypatch.setattr(CallDesk, "finish", real)
    assert finish_calls(app.extensions["canvass"]) == 1
