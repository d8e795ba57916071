"""Tables of voice: calls, their status callbacks, and the numbers that answer calls.

A ``Call`` is one phone call, placed by a campaign or received on one of our numbers. It
follows Twilio's call statuses (``CallStatus``), which only move forward; ``answered_by``
says who picked up. The call carries the flow session it runs and the step counter that
makes Twilio's callbacks idempotent: each TwiML document names the step its action URL
answers, and a request for a step already taken gets the same document again.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bot import timeline
from bot.db import Base, UTCDateTime, utcnow
from bot.models import BigId
from ivr.providers.base import FINAL_STATUSES


class CallStatus(enum.StrEnum):
    """Twilio's call statuses, in the order a call goes through them."""

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"


# The statuses that end a call (the providers' own list).
FINAL_CALL_STATUSES = FINAL_STATUSES
_RANK = {"queued": 0, "ringing": 1, "in-progress": 2}


def call_advances(current: str, new: str) -> bool:
    """True when a call may move from ``current`` to ``new`` (never back, never out of an end)."""
    if current in FINAL_CALL_STATUSES or new == current:
        return False
    if new in FINAL_CALL_STATUSES:
        return True
    return _RANK.get(new, -1) > _RANK.get(current, -1)


class Call(Base):
    """One phone call with a voter."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_contact", "contact_id", "id"),
        Index("ix_calls_campaign", "campaign_id", "status"),
        # The scheduler's sweep of calls whose final status never came.
        Index("ix_calls_status_created", "status", "created_at"),
        # Calls whose end is recorded but not yet applied to their flow (ivr.quickstatus).
        Index(
            "ix_calls_settle_due",
            "settle_due_at",
            postgresql_where=text("settle_due_at IS NOT NULL"),
            sqlite_where=text("settle_due_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("senders.id"))
    session_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("flow_sessions.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    recipient_id: Mapped[int | None] = mapped_column(BigId)
    # A campaign call's attempt record (the message row its recipient follows), if any.
    message_id: Mapped[int | None] = mapped_column(BigId, index=True)
    direction: Mapped[str] = mapped_column(String(8))  # outbound, inbound
    flow_name: Mapped[str | None] = mapped_column(String(64))
    flow_version: Mapped[int | None] = mapped_column(Integer)  # None: the newest
    sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.QUEUED.value)
    answered_by: Mapped[str | None] = mapped_column(String(8))  # human, machine, unknown
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # The key that opts the voter out of calls ("press 9 to stop these calls"), if any.
    opt_out_digit: Mapped[str | None] = mapped_column(String(1))
    # When an answering machine picks up: None runs the flow anyway, "hangup", or "message"
    # (say ``machine_message`` and hang up).
    on_machine: Mapped[str | None] = mapped_column(String(8))
    machine_message: Mapped[str | None] = mapped_column(Text)
    # TwiML step counter: each document's action URL names the step it answers.
    step: Mapped[int] = mapped_column(Integer, default=0)
    last_twiml: Mapped[str | None] = mapped_column(Text)
    # The node the voter was at when the call ended (the hang-up point).
    last_node: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(String(500))
    duration_s: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ringing_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Set when the status webhook's fast path recorded the call's end: its stored steps
    # and the end of its flow are applied by the scheduler's call-ends task, which clears it.
    settle_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CallEvent(Base):
    """A call status callback as Twilio sent it (kept even when it did not move the call)."""

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_call", "call_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("calls.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallStep(Base):
    """A keypad step of a live call, taken and answered but not yet applied to the flow's rows.

    The step webhook reads the call and its newest step, runs the flow, and stores the
    outcome as one row here (``ivr.quickstep``): the keys heard, the engine's events, its
    new state and the TwiML answered. ``ivr.steplog.settle`` turns the rows into
    answers, funnel steps, messages and the session's state, in order, when the call
    ends or any other request of the call comes (and a sweep settles forgotten ones).
    ``(call_id, step)`` is the key: two copies of one request store one step.
    """

    __tablename__ = "call_steps"

    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)  # the request's step; it answered step + 1
    heard: Mapped[str | None] = mapped_column(String(32))  # the keys pressed (none: silence)
    node: Mapped[str | None] = mapped_column(String(64))  # where the flow waited when they were pressed
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    twiml: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class VoiceLine(Base):
    """One of our phone numbers: which flow answers its calls, or what a missed call starts.

    ``missed_call`` makes the number a missed-call line: the call is rejected (free for
    the caller) and ``missed_call_flow`` starts on ``missed_call_channel`` (sms,
    whatsapp) or, with channel ``voice``, as a call back.
    """

    __tablename__ = "voice_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(40), unique=True)  # E.164
    flow_name: Mapped[str | None] = mapped_column(String(64))
    missed_call: Mapped[bool] = mapped_column(Boolean, default=False)
    missed_call_flow: Mapped[str | None] = mapped_column(String(64))
    missed_call_channel: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


def _call_entry(call: Call) -> dict[str, Any]:
    return {
        "direction": call.direction,
        "status": call.status,
        "answered_by": call.answered_by,
        "duration_s": call.duration_s,
        "campaign_id": call.campaign_id,
        "flow": call.flow_name,
        "last_node": call.last_node,
    }


# Calls join every voter's timeline (bot.timeline cannot import ivr: ivr registers them).
timeline.register(timeline.Source("call", Call, Call.created_at, _call_entry, rank=5))
