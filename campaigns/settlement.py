"""Settling what the provider said about each claimed send, and releasing sends never made.

``settle`` stores a batch's outcomes in one transaction (statuses only move forward: a
status callback may have come first); ``release`` puts claimed rows the provider was never
asked about back to ``pending`` without a trace (pause, abort, a worker that died before
calling); ``voter_facts`` keeps what a failure says about the voter (opted out at the
carrier, not on WhatsApp).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, String, case, delete, func, select, update
from sqlalchemy.orm import Session

from bot import bulk
from bot.consent import ConsentLedger
from bot.db import UTCDateTime
from bot.models import Contact, FlowSession, Message, MessageStatusEvent
from campaigns.claims import M, Outcome, R, S
from ivr.models import Call

# Twilio errors that say something lasting about the voter's number.
OPTED_OUT_AT_CARRIER = "21610"
NOT_ON_WHATSAPP = ("63003", "63024")


def settle(db: Session, outcomes: Sequence[Outcome], now: dt.datetime) -> None:
    """Store what the provider said about each send, in one transaction (a statement per table).

    Statuses only move forward: a status callback that already moved a row on (it can
    come before the provider's answer is stored) is not overwritten.
    """
    accepted = [o for o in outcomes if o.status in ("sent", "delivered", "unknown")]
    if accepted:
        params = [
            {
                "mid": o.claimed.message_id,
                "rid": o.claimed.recipient_id,
                "pid": o.provider_id,
                "st": o.status,
                "code": o.error_code,
                "at": now if o.status != "unknown" else None,
            }
            for o in accepted
        ]
        # One statement per table for every row (built once: ``_accepted``).
        for src, stmt in _accepted(bulk.postgresql(db)):
            src.execute(db, stmt, params)
    events = [
        {
            "message_id": o.claimed.message_id,
            "status": _event_status(o),
            "applied": True,
            "error_code": o.error_code,
            "raw": {"provider_status": o.status, "error": o.error_msg} if o.error_msg else _raw(o.status),
            "received_at": now,
        }
        for o in outcomes
        if o.status != "not_sent"
    ]
    bulk.copy_rows(db, MessageStatusEvent.__table__, events)
    _failed(db, [o for o in outcomes if o.status in ("failed", "retry")], now)
    _unsent(db, [o for o in outcomes if o.status == "not_sent"])


@functools.cache
def _accepted(pg: bool) -> tuple[tuple[bulk.Rows, Any], ...]:
    """The UPDATE of messages and of recipients for accepted sends, with their rows' source.

    A callback may have moved a row on already: the status only if still sending; the
    times it was sent (and delivered) and the provider's id whatever the status, unless
    already known.
    """
    out = []
    for table, key in ((M, "mid"), (R, "rid")):
        src = bulk.Rows(
            pg, "settled", **{key: BigInteger(), "pid": String(), "st": String(), "code": String()}, at=UTCDateTime()
        )
        sending = table.c.status == "sending"
        values: dict[str, Any] = {
            "status": case((sending, src.c.st), else_=table.c.status),
            "error_code": case((sending, src.c.code), else_=table.c.error_code),
            "sent_at": func.coalesce(table.c.sent_at, src.c.at),
            "delivered_at": case(
                (src.c.st == "delivered", func.coalesce(table.c.delivered_at, src.c.at)),
                else_=table.c.delivered_at,
            ),
        }
        if table is M:
            values["provider_id"] = func.coalesce(table.c.provider_id, src.c.pid)
        out.append((src, update(table).where(src.match(table.c.id, key)).values(values)))
    return tuple(out)


# The details of an event without an error: one object per status, stored as JSON once a
# batch (bulk.copy_rows converts an object once).
_RAW = {status: {"provider_status": status} for status in ("sent", "delivered", "unknown", "failed", "retry")}


def _raw(status: str) -> dict[str, str]:
    return _RAW.get(status) or {"provider_status": status}


def voter_facts(db: Session, outcomes: Sequence[Outcome]) -> None:
    """What a failure says about the voter: opted out at the carrier, or no WhatsApp."""
    for o in outcomes:
        if o.error_code == OPTED_OUT_AT_CARRIER:
            contact = db.get(Contact, o.claimed.contact_id)
            if contact is not None and contact.consent != "opted_out":
                ConsentLedger(db).record(
                    contact,
                    "opted_out",
                    source="provider",
                    note="Twilio 21610: the voter replied STOP to the carrier",
                )
        elif o.error_code in NOT_ON_WHATSAPP:
            db.execute(update(Contact).where(Contact.id == o.claimed.contact_id).values(whatsapp=False))


def _event_status(o: Outcome) -> str:
    return "failed" if o.status == "retry" else o.status


def _failed(db: Session, outcomes: Sequence[Outcome], now: dt.datetime) -> None:
    if not outcomes:
        return
    params = [
        {
            "mid": o.claimed.message_id,
            "rid": o.claimed.recipient_id,
            "sid": o.claimed.session_id,
            "code": o.error_code,
            "msg": (o.error_msg or "")[:500],
            "at": now,
            "rst": "pending" if o.status == "retry" else "failed",
        }
        for o in outcomes
    ]
    # The message of a failed attempt stays on the timeline, failed; a retryable failure
    # puts the recipient back to pending for a later attempt (a new message).
    src = bulk.Rows(
        db, "failed", mid=BigInteger(), rid=BigInteger(), code=String(), msg=String(), at=UTCDateTime(), rst=String()
    )
    src.execute(
        db,
        update(M)
        .where(src.match(M.c.id, "mid"))
        .values(status="failed", error_code=src.c.code, error_message=src.c.msg, failed_at=src.c.at),
        params,
    )
    src.execute(
        db,
        update(R)
        .where(src.match(R.c.id, "rid"), R.c.status == "sending")
        .values(status=src.c.rst, error_code=src.c.code, error_msg=src.c.msg, failed_at=src.c.at),
        params,
    )
    parked = [p for p in params if p["sid"]]
    # A call attempt has no session yet (it starts when the voter answers).
    sessions = bulk.Rows(db, "parked", sid=BigInteger(), at=UTCDateTime())
    sessions.execute(
        db,
        update(S)
        .where(sessions.match(S.c.id, "sid"), S.c.status != "ended")
        .values(status="ended", end_reason="not_sent", ended_at=sessions.c.at),
        parked,
    )


def _unsent(db: Session, outcomes: Sequence[Outcome]) -> None:
    """Sends stopped before the provider was called (pause, abort): back to pending, no trace."""
    release(db, [(o.claimed.recipient_id, o.claimed.message_id) for o in outcomes])


def release(db: Session, claims: Sequence[tuple[int, int]]) -> list[int]:
    """Put claimed rows the provider was never asked about back to ``pending``, without a trace.

    ``claims``: (recipient id, message id) pairs. A row moves only while it is still
    ``sending`` that message — never a row another job has claimed again since — and its
    prepared message and session go with it. Returns the recipient ids released.
    """
    released: list[int] = []
    for rid, mid in claims:
        row = db.execute(
            update(R)
            .where(R.c.id == rid, R.c.status == "sending", R.c.message_id == mid)
            .values(status="pending", attempts=R.c.attempts - 1, message_id=None, session_id=None, sending_at=None)
            .returning(R.c.id)
        ).first()
        if row is not None:
            released.append(rid)
    mids = [mid for rid, mid in claims if rid in set(released)]
    if mids:
        sids = list(db.scalars(select(Message.session_id).where(Message.id.in_(mids), Message.session_id.is_not(None))))
        db.execute(delete(MessageStatusEvent).where(MessageStatusEvent.message_id.in_(mids)))
        db.execute(delete(Call).where(Call.message_id.in_(mids)))  # a call campaign's call, never placed
        db.execute(delete(Message).where(Message.id.in_(mids)))
        if sids:
            db.execute(delete(FlowSession).where(FlowSession.id.in_(sids)))
    return released
