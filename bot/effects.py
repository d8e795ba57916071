"""Effects: the one place where a sprint's events become rows (and outbound messages).

The engine only describes what happened; this module stores it: messages to send (the
caller queues them after the commit), answers, funnel steps, contact changes, handoff
cases, timers and the session's new state.
"""

from __future__ import annotations

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
    outbound: list[Message] = []
    fs.timeout_at = None
    for event in events:
        if isinstance(event, MessageSent):
            outbound.append(_message(fs, contact, body=event.text, choices=event.choices, node=event.node, now=now))
        elif isinstance(event, AudioPlayed):
            outbound.append(_message(fs, contact, body=None, media=[{"url": event.url}], node=event.node, now=now))
        elif isinstance(event, AnswerSaved):
            db.add(
                Answer(
                    session_id=fs.id,
                    contact_id=contact.id,
                    flow_name=flow.name,
                    name=event.name,
                    value=event.value,
                    answered_at=now,
                )
            )
        elif isinstance(event, FunnelReached):
            db.add(
                FunnelEvent(
                    session_id=fs.id, contact_id=contact.id, flow_name=flow.name, step=event.step, reached_at=now
                )
            )
        elif isinstance(event, ContactChanged):
            _contact_change(db, contact, event)
        elif isinstance(event, HandedOff):
            _open_case(db, fs, contact, event.note)
        elif isinstance(event, InputAwaited) and event.timeout_s:
            fs.timeout_at = now + dt.timedelta(seconds=event.timeout_s)
        elif isinstance(event, TimerStarted):
            fs.timeout_at = now + dt.timedelta(seconds=event.seconds)
        elif isinstance(event, FlowEnded):
            fs.ended_at = now
            fs.end_reason = event.reason
        elif isinstance(event, ErrorRaised):
            log.warning("flow %s, node %s, voter %s: %s", flow.name, event.node, contact.id, event.message)
    for message in outbound:
        db.add(message)
    fs.state = state
    fs.status = state["status"]
    fs.waiting_for = (state.get("waiting") or {}).get("kind")
    fs.expires_at = now + dt.timedelta(seconds=flow.expire_s) if flow.expire_s and fs.status != "ended" else None
    if fs.status == "ended" or fs.channel == "voice":
        # A call's waits are timed by Twilio (the gather's timeout, a pause), not by our timers.
        fs.timeout_at = None
    db.flush()
    return outbound


def _message(
    fs: FlowSession,
    contact: Contact,
    *,
    body: str | None,
    node: str,
    now: dt.datetime,
    choices: Any = (),
    media: Any = (),
) -> Message:
    return Message(
        contact_id=contact.id,
        session_id=fs.id,
        sender_id=fs.sender_id,
        campaign_id=fs.campaign_id,
        direction="out",
        purpose="flow",
        channel=fs.channel,
        body=body,
        choices=list(choices),
        media=list(media),
        node=node,
        # On a call the text is spoken in the TwiML of this very step: it is out already,
        # and no worker may pick it up as a message to send.
        status="sent" if fs.channel == "voice" else "pending",
        sent_at=now if fs.channel == "voice" else None,
    )


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
