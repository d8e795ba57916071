"""Handoff cases as ``bot.handoffs`` runs them, and the timeline's cursor (on both databases)."""

from __future__ import annotations

import datetime as dt

import pytest

from bot import handoffs
from bot.db import Database, utcnow
from bot.direct import ApprovedTemplate
from bot.models import Contact, FlowSession, HandoffCase, Message, Sender
from bot.timeline import Cursor, page


def voter(db: Database) -> int:
    with db.session() as s:
        s.add(Sender(provider="sandbox", channel="whatsapp", address="+919999900001", healthy=True))
        s.add(Sender(provider="sandbox", channel="sms", address="+919999900002", healthy=True))
        contact = Contact(phone="+919876500001", name="Asha")
        s.add(contact)
        s.flush()
        return contact.id


def wrote(db: Database, contact_id: int, channel: str, *, ago: dt.timedelta = dt.timedelta(0)) -> None:
    with db.session() as s:
        s.add(
            Message(
                contact_id=contact_id,
                direction="in",
                channel=channel,
                body="hello",
                status="received",
                created_at=utcnow() - ago,
            )
        )


def test_a_call_handed_off_is_answered_in_writing(db: Database) -> None:
    contact_id = voter(db)
    wrote(db, contact_id, "sms")
    with db.session() as s:
        call = FlowSession(contact_id=contact_id, flow_name="hotline", flow_version=1, channel="voice",
                           status="waiting", state={})  # fmt: skip
        s.add(call)
        s.flush()
        case = HandoffCase(contact_id=contact_id, session_id=call.id, status="open")
        s.add(case)
        s.flush()
        assert handoffs.route(s, case).channel == "sms"
        assert handoffs.reply(s, case.id, "We will call you back.", agent_id=7).channel == "sms"
        assert case.assignee_id == 7


def test_whatsapp_text_needs_the_window_and_a_template_does_not(db: Database) -> None:
    contact_id = voter(db)
    wrote(db, contact_id, "whatsapp", ago=dt.timedelta(hours=25))
    with db.session() as s:
        case, new = handoffs.take_over(s, contact_id, agent_id=3)
        assert new and handoffs.take_over(s, contact_id, agent_id=4) == (case, False)
        with pytest.raises(handoffs.CaseError) as refused:
            handoffs.reply(s, case.id, "Hello?", agent_id=3)
        assert refused.value.field == "text" and "approved template" in str(refused.value)
        sent = handoffs.reply(s, case.id, "Namaste Asha!", agent_id=3, template=ApprovedTemplate("HX1", {"1": "Asha"}))
        assert (sent.purpose, sent.content_sid, sent.content_variables) == ("template", "HX1", {"1": "Asha"})
    wrote(db, contact_id, "whatsapp")  # the voter answers: the window opens again
    with db.session() as s:
        assert handoffs.reply(s, case.id, "Hello!", agent_id=3).purpose == "direct"


@pytest.mark.parametrize(("note", "stored"), [("  booth change  ", "booth change"), ("", None), ("x" * 30, "x" * 30)])
def test_the_note_is_short(db: Database, note: str, stored: str | None) -> None:
    contact_id = voter(db)
    with db.session() as s:
        case, _ = handoffs.take_over(s, contact_id, agent_id=None)
        assert handoffs.set_note(s, case.id, note).note == stored
        with pytest.raises(handoffs.CaseError, match="must be at most 30 characters, got 31") as too_long:
            handoffs.set_note(s, case.id, "y" * 31)
        assert too_long.value.field == "note"


def test_a_cursor_reads_back_and_an_empty_timeline_has_no_next_page(db: Database) -> None:
    cursor = Cursor(dt.datetime(2026, 11, 29, 6, 41, 0, 123456, tzinfo=dt.UTC), "message", 42)
    assert Cursor.parse(str(cursor)) == cursor
    for wrong in ("", "20261129T064100.123456Z.fax.1", "yesterday.message.1", "20261129T064100.123456Z.message.x"):
        with pytest.raises(ValueError, match="before: not a timeline position"):
            Cursor.parse(wrong)
    contact_id = voter(db)
    with db.session() as s:
        assert page(s, contact_id) == page(s, contact_id, before=cursor)
        assert page(s, contact_id).older is None and page(s, contact_id).entries == []
