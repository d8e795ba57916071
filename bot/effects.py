"""Effects: the one place where a sprint's events become rows (and outbound messages).

The engine only describes what happened; this module stores it: messages to send (the
caller queues them after the commit), answers, funnel steps, contact changes, handoff
cases, timers and the session's new state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.contacts import apply_tags, parse_tag, remove_tags
from bot.engine import Flow
from bot.engine.events import (
    AnswerSaved,
    AudioPlayed,
    ContactChanged,
    ErrorRaised,
    Event,
    FlowEnded,
    FunnelReached,
    HandedOff,
    InputAwaited,
    MessageSent,
    TimerStarted,
)
from bot.models import Answer, Contact, FlowSession, FunnelEvent, HandoffCase, Message

log = logging.getLogger(__name__)


@dataclasses.dataclass
class StepRows:
    """What a step's events store, as column values (one place decides them for every path).

    ``bot.router`` and ``ivr.calls`` store them as ORM objects (``apply``); a call's
    stored keypad steps are inserted in bulk (``ivr.steplog``). ``other`` holds the
    events that change rows of their own (contact fields and tags, handoff cases).
    """

    messages: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    answers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    funnel: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    other: list[Event] = dataclasses.field(default_factory=list)
    timeout_at: dt.datetime | None = None
    ended: tuple[dt.datetime, str] | None = None


def step_rows(fs: FlowSession, contact_id: int, flow: Flow, events: list[Event], now: dt.datetime) -> StepRows:
    """The rows a step's events make, in the events' order."""
    rows = StepRows()
    for event in events:
        if isinstance(event, MessageSent):
            rows.messages.append(
                _message(fs, contact_id, body=event.text, choices=event.choices, node=event.node, now=now)
            )
        elif isinstance(event, AudioPlayed):
            rows.messages.append(
                _message(fs, contact_id, body=None, media=[{"url": event.url}], node=event.node, now=now)
            )
        elif isinstance(event, AnswerSaved):
            rows.answers.append(
                {
                    "session_id": fs.id,
                    "contact_id": contact_id,
                    "flow_name": flow.name,
                    "name": event.name,
                    "value": event.value,
                    "answered_at": now,
                }
            )
        elif isinstance(event, FunnelReached):
            rows.funnel.append(
                {
                    "session_id": fs.id,
                    "contact_id": contact_id,
                    "flow_name": flow.name,
                    "step": event.step,
                    "reached_at": now,
                }
            )
        elif isinstance(event, ContactChanged | HandedOff):
            rows.other.append(event)
        elif isinstance(event, InputAwaited) and event.timeout_s:
            rows.timeout_at = now + dt.timedelta(seconds=event.timeout_s)
        elif isinstance(event, TimerStarted):
            rows.timeout_at = now + dt.timedelta(seconds=event.seconds)
        elif isinstance(event, FlowEnded):
            rows.ended = (now, event.reason)
        elif isinstance(event, ErrorRaised):
            log.warning("flow %s, node %s, voter %s: %s", flow.name, event.node, contact_id, event.message)
    return rows


def session_values(
    fs: FlowSession, flow: Flow, state: dict[str, Any], rows: StepRows, now: dt.datetime
) -> dict[str, Any]:
    """The session's columns after a step that left it in ``state``."""
    status = state["status"]
    values: dict[str, Any] = {
        "state": state,
        "status": status,
        "waiting_for": (state.get("waiting") or {}).get("kind"),
        "expires_at": now + dt.timedelta(seconds=flow.expire_s) if flow.expire_s and status != "ended" else None,
        # A call's waits are timed by Twilio (the gather's timeout, a pause), not by our timers.
        "timeout_at": None if status == "ended" or fs.channel == "voice" else rows.timeout_at,
    }
    if rows.ended is not None:
        values["ended_at"], values["end_reason"] = rows.ended
    return values


def apply(
    db: Session,
    fs: FlowSession,
    contact: Contact,
    flow: Flow,
    events: list[Event],
    state: dict[str, Any],
    now: dt.datetime,
) -> list[Message]:
    """Store what a step did; return the new outbound messages (still pending)."""
    rows = step_rows(fs, contact.id, flow, events, now)
    for event in rows.other:
        if isinstance(event, ContactChanged):
            _contact_change(db, contact, event)
        elif isinstance(event, HandedOff):
            _open_case(db, fs, contact, event.note)
    db.add_all(Answer(**values) for values in rows.answers)
    db.add_all(FunnelEvent(**values) for values in rows.funnel)
    outbound = [Message(**values) for values in rows.messages]
    db.add_all(outbound)
    for name, value in session_values(fs, flow, state, rows, now).items():
        setattr(fs, name, value)
    db.flush()
    return outbound


def _message(
    fs: FlowSession,
    contact_id: int,
    *,
    body: str | None,
    node: str,
    now: dt.datetime,
    choices: Any = (),
    media: Any = (),
) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "session_id": fs.id,
        "sender_id": fs.sender_id,
        "campaign_id": fs.campaign_id,
        "direction": "out",
        "purpose": "flow",
        "channel": fs.channel,
        "body": body,
        "choices": list(choices),
        "media": list(media),
        "node": node,
        # On a call the text is spoken in the TwiML of this very step: it is out already,
        # and no worker may pick it up as a message to send.
        "status": "sent" if fs.channel == "voice" else "pending",
        "sent_at": now if fs.channel == "voice" else None,
        # The step's own time: a call's steps may be stored first and applied later.
        "created_at": now,
    }


def _contact_change(db: Session, contact: Contact, event: ContactChanged) -> None:
    if event.field == "language":
        contact.language = str(event.value) if event.value else None
    elif event.field and event.field.startswith("fields."):
        # A new dict, so that the JSON column sees the change.
        contact.fields = {**(contact.fields or {}), event.field[7:]: event.value}
    if event.tags_added:
        apply_tags(db, contact, [parse_tag(t) for t in event.tags_added])
    if event.tags_removed:
        remove_tags(contact, event.tags_removed)


def _open_case(db: Session, fs: FlowSession, contact: Contact, note: str | None) -> None:
    open_case = db.scalar(select(HandoffCase).where(HandoffCase.contact_id == contact.id, HandoffCase.status == "open"))
    if open_case is None:
        db.add(HandoffCase(contact_id=contact.id, session_id=fs.id, status="open", reason=note))
