"""Handoff cases: a person answers the voter instead of the bot, then closes the case.

A case is opened by a flow's ``handoff`` node (``bot.effects``) or by an agent who
takes the conversation over (:func:`take_over`). While it is open the router keeps the
bot quiet and the planner skips the voter (``handoff_open``); closing it makes the
voter available to flows and campaigns again.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.direct import CHANNELS, OUTSIDE_WINDOW, ApprovedTemplate, DirectSendError, checked_text, queued_message
from bot.models import ConsentStatus, Contact, FlowSession, HandoffCase, Message, Sender
from bot.outbox import whatsapp_window_closes

MAX_NOTE = 30


class CaseError(ValueError):
    """The case cannot take this action; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class Route:
    """Where an agent's replies to a case go: the conversation's channel and sender."""

    channel: str
    sender_id: int | None


def route(db: Session, case: HandoffCase) -> Route:
    """The channel and sender of the case's flow session, else of the voter's last message.

    A person answers in writing: a case handed off from a call is answered by WhatsApp or
    SMS, whichever the voter last wrote on (WhatsApp when they never wrote).
    """
    session = db.get(FlowSession, case.session_id) if case.session_id else None
    if session is not None and session.channel in CHANNELS:
        channel, sender_id = session.channel, session.sender_id
    else:
        last_in = db.scalar(
            select(Message)
            .where(Message.contact_id == case.contact_id, Message.direction == "in", Message.channel.in_(CHANNELS))
            .order_by(Message.id.desc())
            .limit(1)
        )
        channel = last_in.channel if last_in else "whatsapp"
        sender_id = last_in.sender_id if last_in else None
    if sender_id is None:
        sender_id = db.scalar(
            select(Sender.id).where(Sender.channel == channel, Sender.healthy.is_(True)).order_by(Sender.id)
        )
    return Route(channel, sender_id)


def reply(
    db: Session, case_id: int, text: str, *, agent_id: int | None, template: ApprovedTemplate | None = None
) -> Message:
    """Queue an agent's message to the voter of an open case (the caller queues the send).

    On WhatsApp, free-form text needs the voter to have written in the last 24 hours;
    outside that window only an approved ``template`` (``text`` is its rendered body) goes.
    """
    case = _open(db, case_id)
    try:
        text = checked_text(text)
    except DirectSendError as exc:
        raise CaseError(exc.field, str(exc)) from None
    contact = db.get(Contact, case.contact_id)
    if contact is not None and contact.consent == ConsentStatus.OPTED_OUT:
        raise CaseError("case", "the voter opted out; nothing is sent to them")
    to = route(db, case)
    if to.sender_id is None:
        raise CaseError("case", f"there is no healthy {to.channel} sender to reply from")
    if to.channel == "whatsapp" and template is None:
        closes = whatsapp_window_closes(db, case.contact_id)
        if closes is None or closes <= utcnow():
            raise CaseError("text", OUTSIDE_WINDOW)
    if case.assignee_id is None:
        case.assignee_id = agent_id
    return queued_message(
        db, case.contact_id, to.sender_id, to.channel, text, session_id=case.session_id, template=template
    )


def take_over(db: Session, contact_id: int, *, agent_id: int | None) -> tuple[HandoffCase, bool]:
    """Open a case for a voter, assigned to the agent; the open one when there is one.

    The voter's live flow session (if any) joins the case: the bot stays quiet, and the
    session ends when the case is closed. Returns the case and whether it is new.
    """
    if db.get(Contact, contact_id) is None:
        raise LookupError(f"no contact {contact_id}")
    found = db.scalar(select(HandoffCase).where(HandoffCase.contact_id == contact_id, HandoffCase.status == "open"))
    if found is not None:
        return found, False
    live = db.scalar(
        select(FlowSession.id)
        .where(FlowSession.contact_id == contact_id, FlowSession.status != "ended")
        .order_by(FlowSession.id.desc())
        .limit(1)
    )
    case = HandoffCase(
        contact_id=contact_id,
        session_id=live,
        status="open",
        assignee_id=agent_id,
        reason="taken over by an agent",
        opened_at=utcnow(),
    )
    db.add(case)
    db.flush()
    return case, True


def assign(db: Session, case_id: int, *, agent_id: int) -> HandoffCase:
    """Make an open case the agent's own (it shows in their "mine" tab)."""
    case = _open(db, case_id)
    case.assignee_id = agent_id
    db.flush()
    return case


def set_note(db: Session, case_id: int, note: str | None) -> HandoffCase:
    """Write the case's short note about the voter (empty clears it)."""
    case = _case(db, case_id)
    case.note = checked_note(note)
    db.flush()
    return case


def checked_note(note: str | None) -> str | None:
    """A note stripped, None when empty; raise ``CaseError`` naming ``note`` when too long."""
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise CaseError("note", f"must be at most {MAX_NOTE} characters, got {len(note)}")
    return note


def close(db: Session, case_id: int, *, note: str | None, agent_id: int | None) -> HandoffCase:
    """Close a case: the voter is available to flows and campaigns again."""
    case = _case(db, case_id)
    note = checked_note(note)
    if case.status == "closed":
        raise CaseError("case", f"case {case_id} is already closed")
    now = utcnow()
    case.status, case.closed_at, case.note = "closed", now, note or case.note
    if case.assignee_id is None:
        case.assignee_id = agent_id
    if case.session_id:
        session = db.get(FlowSession, case.session_id)
        if session is not None and session.status != "ended":
            session.status, session.end_reason, session.ended_at, session.timeout_at = (
                "ended",
                "handoff_closed",
                now,
                None,
            )
    db.flush()
    return case


def _open(db: Session, case_id: int) -> HandoffCase:
    case = _case(db, case_id)
    if case.status != "open":
        raise CaseError("case", f"case {case_id} is closed")
    return case


def _case(db: Session, case_id: int) -> HandoffCase:
    case = db.get(HandoffCase, case_id)
    if case is None:
        raise LookupError(f"no handoff case {case_id}")
    return case
