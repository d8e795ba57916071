"""The fast path of keypad steps (``ivr.quickstep``) and how its stored steps are applied (``ivr.steplog``).

Runs on SQLite and PostgreSQL. The calls are the scripted ones of ``test_voice_webhooks``:
signed as Twilio signs them, through the real webhooks.
"""

from __future__ import annotations

import datetime as dt
import threading
import xml.etree.ElementTree as ET

from sqlalchemy import select, update

from bot.engine import load_text
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import Answer, Contact, FlowSession, FunnelEvent, Message
from ivr import steplog
from ivr.models import Call, CallStep
from tests.ivr import test_voice_webhooks
from tests.ivr.test_voice_webhooks import BASE, LINE, action, count, end_call, form, post, said, twiml

# The webhook tests' fixture: Twilio's credentials, the flows and the voice line.
app = test_voice_webhooks.app

TAGGER = """\
flow: voice_tagger
language: en
channels: [voice]
funnel: [asked, pledged]
start: q
nodes:
  q:
    ask: "Press 1 to pledge your vote."
    choices:
      - {key: "1", words: [yes], label: "Yes"}
    save: pledge
    funnel: asked
    next: pledge
  pledge:
    set:
      tags: {add: [pledged]}
    funnel: pledged
    next: bye
  bye:
    say: "Thank you."
    end: true
"""


def _answer(client) -> ET.Element:  # type: ignore[no-untyped-def]
    return twiml(post(client, f"{BASE}/webhooks/twilio/voice", form(CallStatus="ringing")))


def _steps(app) -> list[tuple[int, str | None]]:  # type: ignore[no-untyped-def]
    with app.extensions["canvass"].db.session() as db:
        return [(r.step, r.heard) for r in db.scalars(select(CallStep).order_by(CallStep.step))]


def _row(call_id: int, document: str) -> dict[str, object]:
    """The values of step 1's row, as the fast path stores them (keys 1 at the first question)."""
    return {
        "call_id": call_id,
        "step": 1,
        "heard": "1",
        "node": "will_vote",
        "events": [],
        "state": {"status": "waiting", "node": "knows_booth"},
        "twiml": document,
        "at": dt.datetime.now(dt.UTC),
    }


def _complete(app, client) -> None:  # type: ignore[no-untyped-def]
    end_call(app, client, CallStatus="completed", CallDuration="40")


def test_steps_are_stored_then_applied_in_order_when_the_call_ends(app, client) -> None:  # type: ignore[no-untyped-def]
    root = _answer(client)
    root = twiml(post(client, action(root), form(Digits="1")))
    root = twiml(post(client, action(root), form(Digits="7")))  # a wrong key: the re-prompt
    root = twiml(post(client, action(root), form(Digits="2")))
    assert said(root)[0].startswith("How will you get there?")
    # Answered from the stored steps (the flow's start, then the keys): none of them is in
    # the flow's tables yet.
    assert _steps(app) == [(0, None), (1, "1"), (2, "7"), (3, "2")]
    assert count(app, Answer) == 0
    assert count(app, FunnelEvent) == 0
    with app.extensions["canvass"].db.session() as db:
        assert db.scalar(select(Call.step)) == 0

    root = twiml(post(client, action(root), form(Digits="3")))
    assert root[-1].tag == "Hangup"
    _complete(app, client)

    assert _steps(app) == []
    with app.extensions["canvass"].db.session() as db:
        call = db.scalars(select(Call)).one()
        fs = db.get(FlowSession, call.session_id)
        assert call.status == "completed" and call.step == 5
        assert call.last_node == "thanks"
        assert fs is not None and (fs.status, fs.end_reason) == ("ended", "completed")
        answers = {a.name: a.value for a in db.scalars(select(Answer))}
        assert answers == {"will_vote": "1", "knows_booth": "2", "transport": "3"}
        steps = [f.step for f in db.scalars(select(FunnelEvent).order_by(FunnelEvent.id))]
        assert steps == ["started", "q1", "q2", "q3", "completed"]
        keys = db.scalars(
            select(Message.body).where(Message.direction == "in").order_by(Message.created_at, Message.id)
        ).all()
        assert keys == ["1", "7", "2", "3"]
        # Each spoken prompt keeps the time of its step, after the keys that led to it.
        rows = db.execute(select(Message.direction, Message.body, Message.created_at).order_by(Message.id)).all()
        times = [at for _, _, at in rows]
        assert times == sorted(times)
        assert fs.replied_at is not None and fs.replied_at <= times[-1]


def test_a_repeated_step_gets_the_stored_document_and_stores_nothing(app, client) -> None:  # type: ignore[no-untyped-def]
    root = _answer(client)
    first = action(root)
    second = twiml(post(client, first, form(Digits="1")))
    again = twiml(post(client, first, form(Digits="1")))
    assert ET.tostring(again) == ET.tostring(second)
    assert _steps(app) == [(0, None), (1, "1")]
    # An older step still (the voter moved on since): the full path answers with the newest document.
    third = twiml(post(client, action(second), form(Digits="1")))
    older = twiml(post(client, first, form(Digits="1")))
    assert ET.tostring(older) == ET.tostring(third)
    assert _steps(app) == []  # the full path applied the stored steps first
    with app.extensions["canvass"].db.session() as db:
        assert db.scalar(select(Call.step)) == 3


def test_two_copies_of_one_step_store_one_row(app, client) -> None:  # type: ignore[no-untyped-def]
    from web.voice import quick_steps

    root = _answer(client)
    first = action(root)
    with app.test_request_context():
        quick = quick_steps()
    with app.extensions["canvass"].db.session() as db:
        call_id = db.scalar(select(Call.id))
    params = _row(call_id, "<Response>first</Response>")
    assert quick._store(params) is True
    assert quick._store({**params, "twiml": "<Response>second</Response>"}) is False
    assert quick._stored_answer(call_id, 1) == "<Response>first</Response>"
    assert _steps(app) == [(0, None), (1, "1")]
    assert first  # the answer's own document is untouched


def test_a_step_after_the_call_ended_takes_the_full_path(app, client) -> None:  # type: ignore[no-untyped-def]
    root = _answer(client)
    _complete(app, client)
    root = twiml(post(client, action(root), form(Digits="1")))
    assert root[-1].tag == "Hangup"
    assert _steps(app) == []
    assert count(app, Answer) == 0


def test_a_step_racing_the_final_status_waits_for_it_and_stores_nothing(app, client) -> None:  # type: ignore[no-untyped-def]
    from web.voice import quick_steps

    rt = app.extensions["canvass"]
    if rt.db.dialect != "postgresql":
        return  # SQLite has one writer at a time: the race cannot happen there
    _answer(client)
    with app.test_request_context():
        quick = quick_steps()
    with rt.db.session() as db:
        call_id = db.scalar(select(Call.id))
    params = _row(call_id, "<Response/>")
    stored: list[bool] = []
    with rt.db.session() as db:
        # The status callback's transaction: the call locked, then ended.
        db.execute(select(Call).where(Call.id == call_id).with_for_update())
        db.execute(update(Call).where(Call.id == call_id).values(status="completed"))
        worker = threading.Thread(target=lambda: stored.append(quick._store(params)))
        worker.start()
        worker.join(0.5)
        assert worker.is_alive(), "the step's insert must wait for the call's lock"
    worker.join(10)
    assert stored == [False]
    assert _steps(app) == [(0, None)]  # the flow's start only


def test_a_step_that_changes_the_contact_is_applied_at_once(app, client) -> None:  # type: ignore[no-untyped-def]
    rt = app.extensions["canvass"]
    with rt.db.session() as db:
        store(db, load_text(TAGGER, "voice_tagger.yaml"), TAGGER)
        line = "+911140000001"
        from ivr.models import VoiceLine

        db.add(VoiceLine(address=line, flow_name="voice_tagger"))
    clear_cache()
    root = twiml(post(client, f"{BASE}/webhooks/twilio/voice", form(To=line)))
    root = twiml(post(client, action(root), form(To=line, Digits="1")))
    assert said(root) == ["Thank you."]
    assert _steps(app) == []
    with rt.db.session() as db:
        contact = db.scalars(select(Contact)).one()
        assert contact.plain_tags == ["pledged"]
        assert [f.step for f in db.scalars(select(FunnelEvent).order_by(FunnelEvent.id))] == ["asked", "pledged"]
        assert db.scalar(select(Call.step)) == 2


def test_the_sweep_applies_the_steps_of_a_call_whose_end_never_came(app, client) -> None:  # type: ignore[no-untyped-def]
    rt = app.extensions["canvass"]
    root = _answer(client)
    twiml(post(client, action(root), form(Digits="1")))
    now = dt.datetime.now(dt.UTC)
    assert steplog.settle_stale(rt.db.session, dt.timedelta(minutes=10), now) == 0  # still live
    # The flow's start and the keys: two steps.
    assert steplog.settle_stale(rt.db.session, dt.timedelta(minutes=10), now + dt.timedelta(minutes=11)) == 2
    assert _steps(app) == []
    with rt.db.session() as db:
        assert db.scalar(select(Answer.value)) == "1"
        assert db.scalar(select(Call.step)) == 2


def test_an_inbound_line_answer_asked_again_gets_the_newest_document(app, client) -> None:  # type: ignore[no-untyped-def]
    root = _answer(client)
    second = twiml(post(client, action(root), form(Digits="1")))
    again = _answer(client)
    assert ET.tostring(again) == ET.tostring(second)
    assert LINE
