"""Conversations through the sandbox provider: routing, consent, effects, sending, timers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.channels import REGISTRY
from bot.conversations import fire_due_timeouts, receive
from bot.engine import load_path
from bot.flowstore import store
from bot.keywords import OPT_IN, OPT_OUT
from bot.models import (
    Answer,
    ConsentEvent,
    Contact,
    FlowSession,
    FunnelEvent,
    HandoffCase,
    Message,
    MessageStatusEvent,
    Sender,
    advances,
)
from bot.outbox import send_message

ROOT = Path(__file__).resolve().parents[2]
VOTER = "+919876543210"


@pytest.fixture
def rt(make_app):  # type: ignore[no-untyped-def]
    app = make_app(CANVASS_ACTIONS="flows.actions")
    runtime = app.extensions["canvass"]
    with runtime.db.session() as db:
        for name in ("booth_locator", "grievance_intake", "turnout_reminder"):
            path = ROOT / "flows" / f"{name}.yaml"
            store(db, load_path(path), path.read_text())
        db.add(Sender(provider="sandbox", channel="whatsapp", address="+919999900001", healthy=True))
    from bot.flowlibrary import clear_cache

    clear_cache()
    return runtime


def say(rt, text: str, phone: str = VOTER, sid: str | None = None):  # type: ignore[no-untyped-def]
    form = {"From": phone, "To": "+919999900001", "Body": text, "Channel": "whatsapp"}
    if sid:
        form["MessageSid"] = sid
    with rt.db.session() as db:
        sender_id = db.scalar(select(Sender.id))
    return receive(rt, REGISTRY["sandbox"]().parse_inbound(form), sender_id)


def count(rt, model, *where) -> int:  # type: ignore[no-untyped-def]
    with rt.db.session() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_a_conversation_from_first_message_to_flow_end(rt) -> None:  # type: ignore[no-untyped-def]
    routed, replies = say(rt, "Booth please")
    assert routed.outcome == "started"
    assert next(r.body for r in replies) == "Namaste there! Polling day is 20 November."
    assert replies[1].choices == [{"key": "1", "label": "Yes"}, {"key": "2", "label": "No"}]
    assert say(rt, "nahi")[0].outcome == "resumed"
    routed, replies = say(rt, "ABC1234567")
    assert [r.body for r in replies][-1].startswith("Your booth is Booth 14")
    with rt.db.session() as db:
        fs = db.get(FlowSession, routed.session_id)
        assert (fs.status, fs.end_reason, fs.flow_name, fs.flow_version) == ("ended", "completed", "booth_locator", 1)
        steps = db.scalars(select(FunnelEvent.step).where(FunnelEvent.session_id == fs.id).order_by(FunnelEvent.id))
        assert list(steps) == ["greeted", "answered", "epic_given", "booth_shared"]
        answers = dict(db.execute(select(Answer.name, Answer.value).where(Answer.session_id == fs.id)).tuples().all())
        assert answers == {"knows_booth": "2", "epic": "ABC1234567"}
        contact = db.scalar(select(Contact).where(Contact.phone == VOTER))
        assert contact.last_seen_at is not None
        pending = list(db.scalars(select(Message.id).where(Message.direction == "out").order_by(Message.id)))
        assert count(rt, Message, Message.direction == "in") == 3
    # The worker's job: each message sent once, however often the job runs.
    for message_id in pending:
        assert send_message(rt.db, rt.settings, message_id) == "delivered"
        assert send_message(rt.db, rt.settings, message_id).startswith("not pending")
    assert count(rt, Message, Message.status == "delivered") == len(pending)
    assert count(rt, MessageStatusEvent) == len(pending)


@pytest.mark.parametrize("word", [*sorted(OPT_OUT), "stop", " Stop! ", "opt-out", "unsubscribe."])
def test_every_opt_out_keyword_in_any_case(rt, word: str) -> None:  # type: ignore[no-untyped-def]
    say(rt, "booth")
    routed, replies = say(rt, word)
    assert routed.outcome == "opted_out"
    assert [r.purpose for r in replies] == ["consent"]
    assert say(rt, word)[1] == []  # a second STOP: no second confirmation
    with rt.db.session() as db:
        contact = db.scalar(select(Contact).where(Contact.phone == VOTER))
        assert contact.consent == "opted_out"
        assert db.scalar(select(FlowSession.status)) == "ended"  # the running conversation ends too
    assert count(rt, ConsentEvent) == 1


def test_queued_messages_to_an_opted_out_voter_are_not_sent(rt) -> None:  # type: ignore[no-untyped-def]
    _, replies = say(rt, "booth")
    flow_message = replies[0].id
    _, confirmation = say(rt, "STOP")
    assert send_message(rt.db, rt.settings, flow_message) == "failed: opted_out"
    assert send_message(rt.db, rt.settings, confirmation[0].id) == "delivered"  # the confirmation still goes
    assert say(rt, "booth")[0].outcome == "ignored_opted_out"


@pytest.mark.parametrize("word", [*sorted(OPT_IN), "start", " unstop "])
def test_opting_back_in(rt, word: str) -> None:  # type: ignore[no-untyped-def]
    say(rt, "STOP")
    routed, replies = say(rt, word)
    assert routed.outcome == "opted_in" and replies[0].purpose == "consent"
    assert say(rt, "booth")[0].outcome == "started"


def test_help_and_a_subscribed_yes(rt) -> None:  # type: ignore[no-untyped-def]
    routed, replies = say(rt, "help")
    assert routed.outcome == "help" and "STOP" in replies[0].body
    say(rt, "booth")
    assert say(rt, "YES")[0].outcome == "resumed"  # an answer, not a keyword


def test_the_same_message_twice_is_stored_once(rt) -> None:  # type: ignore[no-untyped-def]
    first = say(rt, "booth", sid="SM0001")
    again = say(rt, "booth", sid="SM0001")
    assert again[0].outcome == "duplicate" and again[0].message_id == first[0].message_id
    assert count(rt, Message, Message.direction == "in") == 1


def test_nothing_matches_and_the_message_is_kept(rt) -> None:  # type: ignore[no-untyped-def]
    routed, replies = say(rt, "hello there")
    assert (routed.outcome, replies) == ("stored", [])
    assert count(rt, Message, Message.body == "hello there") == 1


def test_handoff_opens_a_case_and_the_bot_stays_quiet(rt) -> None:  # type: ignore[no-untyped-def]
    say(rt, "complaint")
    say(rt, "Ward 12")
    routed, _ = say(rt, "The ramp is broken")
    assert routed.outcome == "resumed"
    with rt.db.session() as db:
        case = db.scalar(select(HandoffCase))
        assert (case.status, case.reason) == ("open", "grievance at Ward 12: The ramp is broken")
    assert say(rt, "anyone there?")[0].outcome == "handoff"


def test_a_question_timeout_fires_from_the_database(rt) -> None:  # type: ignore[no-untyped-def]
    say(rt, "pledge")  # turnout_reminder: the RSVP question times out after 1 day
    with rt.db.session() as db:
        fs = db.scalar(select(FlowSession))
        assert fs.waiting_for == "ask" and fs.timeout_at is not None
        fs.timeout_at = fs.timeout_at - dt.timedelta(days=2)  # as if a day had passed
    assert fire_due_timeouts(rt) == 1
    assert fire_due_timeouts(rt) == 0  # fired once only
    with rt.db.session() as db:
        nudge = db.scalars(select(Message.body).where(Message.direction == "out").order_by(Message.id)).all()
        assert nudge[-2] == "Just checking: did you see our message about polling day?"
        assert db.scalar(select(FlowSession.state))["vars"] == {"nudges": "1"}


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        ("pending", "sending", True),
        ("sending", "sent", True),
        ("sent", "delivered", True),
        ("delivered", "read", True),
        ("delivered", "sent", False),  # late callback
        ("read", "delivered", False),
        ("sent", "sent", False),  # duplicate
        ("sent", "failed", True),
        ("sending", "undelivered", True),
        ("delivered", "failed", False),
        ("failed", "delivered", False),
        ("unknown", "delivered", True),
    ],
)
def test_statuses_only_move_forward(current: str, new: str, moves: bool) -> None:
    assert advances(current, new) is moves


def test_a_running_session_finishes_on_its_version(rt) -> None:  # type: ignore[no-untyped-def]
    say(rt, "booth")
    path = ROOT / "flows" / "booth_locator.yaml"
    changed = path.read_text().replace("Please send your EPIC", "NEW VERSION: send your EPIC")
    with rt.db.session() as db:
        from bot.engine import load_text

        assert store(db, load_text(changed), changed).version == 2
    from bot.flowlibrary import FRESH_S, clear_cache

    assert FRESH_S <= 2  # other processes see a new version within seconds; this one at once:
    clear_cache()
    _, replies = say(rt, "2")
    assert replies[0].body.startswith("Please send your EPIC")  # still version 1
    say(rt, "ABC1234567")
    _, fresh = say(rt, "booth", phone="+919876543219")
    _, fresh = say(rt, "2", phone="+919876543219")
    assert fresh[0].body.startswith("NEW VERSION")  # a new session starts on version 2


def test_an_idle_session_expires(rt) -> None:  # type: ignore[no-untyped-def]
    say(rt, "booth")
    with rt.db.session() as db:
        fs = db.scalar(select(FlowSession))
        fs.expires_at = fs.expires_at - dt.timedelta(days=8)  # booth_locator expires after 7 days idle
    routed, _ = say(rt, "2")
    assert routed.outcome == "stored"  # "2" is no keyword: the old session is over, nothing starts
    with rt.db.session() as db:
        assert db.scalar(select(FlowSession.end_reason)) == "expired"


def test_whatsapp_free_form_only_within_24_hours(rt) -> None:  # type: ignore[no-untyped-def]
    _, replies = say(rt, "booth")
    assert send_message(rt.db, rt.settings, replies[0].id) == "delivered"
    with rt.db.session() as db:
        for message in db.scalars(select(Message).where(Message.direction == "in")):
            message.created_at = message.created_at - dt.timedelta(hours=25)
    assert send_message(rt.db, rt.settings, replies[1].id) == "failed: outside_window"


def test_old_message_bodies_are_purged_and_the_rest_kept(rt) -> None:  # type: ignore[no-untyped-def]
    from bot.retention import purge_bodies

    say(rt, "booth")
    say(rt, "2")
    with rt.db.session() as db:
        first = db.scalar(select(Message).order_by(Message.id))
        first.created_at = first.created_at - dt.timedelta(days=31)
        old_id = first.id
    assert purge_bodies(rt.db, 30) == 1
    assert purge_bodies(rt.db, 30) == 0
    with rt.db.session() as db:
        old = db.get(Message, old_id)
        assert (old.body, old.media, old.status, old.direction) == (None, [], "received", "in")
        assert db.scalar(select(func.count()).select_from(Message).where(Message.body.is_not(None))) >= 3
        assert db.scalar(select(func.count()).select_from(FunnelEvent)) == 3
