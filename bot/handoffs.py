"""Handoff cases: a person answers the voter instead of the bot, then closes the case."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.direct import DirectSendError, checked_text, queued_message
from bot.models import FlowSession, HandoffCase, Message, Sender

MAX_NOTE = 30


class CaseError(ValueError):
    """The case cannot take this action; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def reply(db: Session, case_id: int, text: str, *, agent_id: int | None) -> Message:
    """Queue an agent's message to the voter of an open case (the caller queues the send)."""
    case = _case(db, case_id)
    if case.status != "open":
        raise CaseError("case", f"case {case_id} is closed")
    try:
        text = checked_text(text)
    except DirectSendError as exc:
        raise CaseError(exc.field, str(exc)) from None
    session = db.get(FlowSession, case.session_id) if case.session_id else None
    last_in = db.scalar(
        select(Message)
        .where(Message.contact_id == case.contact_id, Message.direction == "in")
        .order_by(Message.id.desc())
    )
    channel = session.channel if session else (last_in.channel if last_in else "whatsapp")
    sender_id = session.sender_id if session else (last_in.sender_id if last_in else None)
    if sender_id is None:
        sender_id = db.scalar(select(Sender.id).where(Sender.channel == channel, Sender.healthy.is_(True)))
    if case.assignee_id is None:
        case.assignee_id = agent_id
    return queued_message(db, case.contact_id, sender_id, channel, text, session_id=case.session_id)


def close(db: Session, case_id: int, *, note: str | None, agent_id: int | None) -> HandoffCase:
    """Close a case: the voter is available to flows and campaigns again."""
    case = _case(db, case_id)
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise CaseError("note", f"must be at most {MAX_NOTE} characters, got {len(note)}")
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


def _case(db: Session, case_id: int) -> HandoffCase:
    case = db.get(HandoffCase, case_id)
    if case is None:
        raise LookupError(f"no handoff case {case_id}")
    return case
