"""A call's stored keypad steps, turned into its flow's rows.

The step webhook's fast path (``ivr.quickstep``) answers Twilio from one read and one
``call_steps`` row. This module applies those rows, oldest first, exactly as the full
path (``ivr.calls.CallDesk``) would have stored each step: the keys heard as an inbound
message, then the engine's events through ``bot.effects`` (answers, funnel steps, the
prompts spoken, the session's new state), and the call's step counter, node and TwiML.
It runs with the call's row locked (``FOR UPDATE``): at the call's end (its status
callback), before any other request of the call takes the full path, and from the
scheduler's sweep for a call whose end never came. Applied rows are deleted in the same
transaction, so a row is applied once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import delete, exists, func, insert, select, tuple_
from sqlalchemy.orm import Session

from bot import effects
from bot.engine import Flow
from bot.engine.events import ContactChanged, Event, HandedOff, event_from_dict
from bot.flowlibrary import FlowLibrary
from bot.models import Answer, Contact, FlowSession, FunnelEvent, Message
from ivr.models import Call, CallStep

log = logging.getLogger(__name__)
# The sweep applies the steps of calls quiet for this long: their status callback was lost,
# or the voter is still on a long recording or pause. Applying a live call's steps is
# harmless: its next step continues from them (the call's step counter moved with them).
STALE_AFTER = dt.timedelta(minutes=10)
Values = dict[str, Any]
# The rows a settle inserts: messages, answers, funnel steps.
Made = tuple[list[Values], list[Values], list[Values]]
# Events that change rows besides the session's own: a step with them is applied at once.
APPLY_AT_ONCE = (ContactChanged, HandedOff)


def heard_values(call: Call, fs: FlowSession, digits: str, node: str | None, at: dt.datetime) -> dict[str, Any]:
    """The inbound message of the keys a voter pressed (the first ones are the session's reply)."""
    return {
        "contact_id": call.contact_id,
        "session_id": fs.id,
        "campaign_id": call.campaign_id,
        "direction": "in",
        "purpose": "flow",
        "channel": "voice",
        "body": digits,
        "node": node,
        "status": "received",
        "created_at": at,
        # The same columns as a spoken prompt's (bot.effects): both go in one bulk insert.
        "sender_id": None,
        "choices": [],
        "media": [],
        "sent_at": None,
    }


def heard(db: Session, call: Call, fs: FlowSession, digits: str, node: str | None, at: dt.datetime) -> None:
    """Keep the keys the voter pressed on their timeline."""
    db.add(Message(**heard_values(call, fs, digits, node, at)))
    if fs.replied_at is None:
        fs.replied_at = at


def settle(db: Session, call: Call, fs: FlowSession | None, contact: Contact, library: FlowLibrary) -> int:
    """Apply the call's stored steps in order (the call's row is locked); return how many."""
    return settle_many(db, [(call, fs, contact)], library)


def settle_many(db: Session, calls: list[tuple[Call, FlowSession | None, Contact]], library: FlowLibrary) -> int:
    """Apply the stored steps of several calls, each in order (their rows are locked); return how many.

    A row for a step the call has already passed (``step < call.step``) was superseded by
    the full path and is only deleted. The rows are read in one SELECT; their messages,
    answers and funnel steps are inserted in bulk, one statement per table for all the
    calls, and the rows deleted in one statement; the sessions and calls are updated by
    the session's flush. A step whose events change other rows (contact, handoff) goes
    through ``effects.apply`` on its own.
    """
    if not calls:
        return 0
    by_call: dict[int, list[CallStep]] = {}
    ids = [call.id for call, _, _ in calls]
    for row in db.scalars(select(CallStep).where(CallStep.call_id.in_(ids)).order_by(CallStep.call_id, CallStep.step)):
        by_call.setdefault(row.call_id, []).append(row)
    if not by_call:
        return 0
    out: Made = ([], [], [])
    applied = 0
    for call, fs, contact in calls:
        pending = [row for row in by_call.get(call.id, []) if row.step >= call.step]
        found = library.get(fs.flow_name, fs.flow_version) if fs is not None and pending else None
        if pending and (fs is None or found is None):
            log.error("call %s: %d stored step(s) have no flow session or flow to apply to", call.id, len(pending))
            continue
        if pending:
            assert fs is not None and found is not None
            _apply(db, call, fs, contact, found[0], pending, out)
            applied += len(pending)
    _insert(db, *out)
    keys = [(row.call_id, row.step) for rows in by_call.values() for row in rows]
    db.execute(
        delete(CallStep)
        .where(tuple_(CallStep.call_id, CallStep.step).in_(keys))
        .execution_options(synchronize_session=False)
    )
    for rows in by_call.values():
        for row in rows:
            db.expunge(row)
    return applied


def _apply(
    db: Session, call: Call, fs: FlowSession, contact: Contact, flow: Flow, pending: list[CallStep], out: Made
) -> None:
    """Turn one call's pending rows into rows of ``out`` (messages, answers, funnel) and the session's state."""
    messages, answers, funnel = out
    for row in pending:
        events = [event_from_dict(e) for e in row.events]
        if row.heard:
            messages.append(heard_values(call, fs, row.heard, row.node, row.at))
            fs.replied_at = fs.replied_at or row.at
        made = effects.step_rows(fs, contact.id, flow, events, row.at)
        if made.other:
            # Contact changes and handoffs need the ORM: store what came before, then this step whole.
            _insert(db, messages, answers, funnel)
            for rows in out:
                rows.clear()
            effects.apply(db, fs, contact, flow, events, row.state, row.at)
        else:
            messages += made.messages
            answers += made.answers
            funnel += made.funnel
            for name, value in effects.session_values(fs, flow, row.state, made, row.at).items():
                setattr(fs, name, value)
        call.last_node = row.state.get("node") or call.last_node
        call.step = row.step + 1
        call.last_twiml = row.twiml


def _insert(db: Session, messages: list[Values], answers: list[Values], funnel: list[Values]) -> None:
    """One executemany per table and set of columns (Core: no ORM objects to build)."""
    conn = db.connection()
    for model, values in ((Message, messages), (Answer, answers), (FunnelEvent, funnel)):
        by_columns: dict[frozenset[str], list[Values]] = {}
        for one in values:
            by_columns.setdefault(frozenset(one), []).append(one)
        for group in by_columns.values():
            conn.execute(insert(model.__table__), group)


def applies_at_once(events: list[Event]) -> bool:
    """True when a step's events change the contact or open a case: not a step to keep for later."""
    return any(isinstance(e, APPLY_AT_ONCE) for e in events)


def has_steps() -> Any:
    """A column for a query of ``Call``: whether the call has stored steps to apply."""
    return exists().where(CallStep.call_id == Call.id).label("stepped")


def settle_call(db: Session, call_id: int) -> int:
    """Lock a call and apply its stored steps (the sweep's and the fast path's entry)."""
    row = db.execute(
        select(Call, FlowSession, Contact)
        .join(Contact, Contact.id == Call.contact_id)
        .outerjoin(FlowSession, FlowSession.id == Call.session_id)
        .where(Call.id == call_id)
        .with_for_update(of=Call)
    ).first()
    if row is None:
        return 0
    call, fs, contact = row
    return settle(db, call, fs, contact, FlowLibrary(db))


def settle_stale(db_factory: Any, older_than: dt.timedelta, now: dt.datetime, limit: int = 500) -> int:
    """Apply the stored steps of calls whose newest step is older than ``older_than``.

    A call's steps are applied when it ends; this catches the calls whose end never
    came (a lost status callback). One transaction per call. Returns the steps applied.
    """
    with db_factory() as db:
        ids = db.scalars(
            select(CallStep.call_id)
            .group_by(CallStep.call_id)
            .having(func.max(CallStep.at) < now - older_than)
            .limit(limit)
        ).all()
    applied = 0
    for call_id in ids:
        with db_factory() as db:
            applied += settle_call(db, call_id)
    return applied
