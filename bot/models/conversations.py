"""Tables of conversations.

Senders, flow sessions, messages and their statuses, funnel steps, answers and handoff
cases.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base, UTCDateTime, utcnow
from bot.models.contacts import BigId


class MessageStatus(enum.StrEnum):
    """Where a message is; statuses only move forward (see ``advances``)."""

    PENDING = "pending"
    SENDING = "sending"
    UNKNOWN = "unknown"  # a worker died while sending: a status callback settles it
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    RECEIVED = "received"  # an inbound message


_RANK = {"pending": 0, "sending": 1, "unknown": 2, "sent": 3, "delivered": 4, "read": 5, "failed": 4, "undelivered": 4}


def advances(current: str, new: str) -> bool:
    """True when ``new`` moves a message forward from ``current`` (never backward).

    failed / undelivered end a message that was not yet delivered; a late "sent" after
    "delivered" (callbacks arrive out of order) is ignored, and so is a repeat.
    """
    if current == new or current in ("read", "failed", "undelivered"):
        return False
    if new in ("failed", "undelivered"):
        return current not in ("delivered", "read")
    return _RANK.get(new, -1) > _RANK.get(current, -1)


class Sender(Base):
    """One number or WhatsApp sender of a provider."""

    __tablename__ = "senders"
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_senders_channel_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # sandbox, twilio
    channel: Mapped[str] = mapped_column(String(16))  # whatsapp, sms, voice
    address: Mapped[str] = mapped_column(String(40))  # E.164
    name: Mapped[str | None] = mapped_column(String(80))
    messaging_service_sid: Mapped[str | None] = mapped_column(String(34))
    rate_per_s: Mapped[float] = mapped_column(Float, default=1.0)
    healthy: Mapped[bool] = mapped_column(Boolean, default=True)
    health_note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FlowSession(Base):
    """One voter's run through one flow version."""

    __tablename__ = "flow_sessions"
    __table_args__ = (
        Index("ix_flow_sessions_contact_status", "contact_id", "status"),
        # For the sweeper of due timeouts; most sessions (a campaign's parked ones) have none.
        Index(
            "ix_flow_sessions_timeout",
            "status",
            "timeout_at",
            postgresql_where=text("timeout_at IS NOT NULL"),
            sqlite_where=text("timeout_at IS NOT NULL"),
        ),
        # A campaign's sessions (its funnel on the campaign page) read from the index alone;
        # most sessions have no campaign.
        Index(
            "ix_flow_sessions_campaign",
            "campaign_id",
            "id",
            postgresql_where=text("campaign_id IS NOT NULL"),
            sqlite_where=text("campaign_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    flow_name: Mapped[str] = mapped_column(String(64))
    flow_version: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("senders.id"))
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(16))  # active, waiting, ended
    waiting_for: Mapped[str | None] = mapped_column(String(16))  # ask, wait, action, handoff, ...
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    # When a question's timeout or a wait's timer fires (the scheduler resumes it then).
    timeout_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When an idle session ends by itself (the flow's expire).
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The voter's first input after the start (a campaign's "replied_at").
    replied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))


class Message(Base):
    """A message to or from a voter, with where it stands."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_contact", "contact_id", "id"),
        # Inbound messages by time ("replies today" on the dashboard); outbound ones, the
        # bulk of the table, stay out of it.
        Index(
            "ix_messages_inbound_created",
            "created_at",
            postgresql_where=text("direction = 'in'"),
            sqlite_where=text("direction = 'in'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("flow_sessions.id", ondelete="SET NULL"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("senders.id"))
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    # A campaign's opening message names its recipient row (status callbacks update it).
    recipient_id: Mapped[int | None] = mapped_column(BigId)
    direction: Mapped[str] = mapped_column(String(3))  # in, out
    # flow, consent (a STOP confirmation goes out even to an opted-out voter), direct,
    # template (a person's approved template, allowed outside WhatsApp's 24-hour window), campaign
    purpose: Mapped[str] = mapped_column(String(16), default="flow")
    channel: Mapped[str] = mapped_column(String(16))
    body: Mapped[str | None] = mapped_column(Text)
    media: Mapped[list[Any]] = mapped_column(JSON, default=list)
    choices: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # An approved WhatsApp template sent by a person (purpose "template"): Twilio's Content
    # API id and its variables; ``body`` holds the rendered text, as the voter reads it.
    content_sid: Mapped[str | None] = mapped_column(String(34))
    content_variables: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    node: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(String(500))
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class MessageStatusEvent(Base):
    """Every status change and raw callback of a message, kept as it came."""

    __tablename__ = "message_status_events"
    __table_args__ = (Index("ix_message_status_events_message", "message_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    applied: Mapped[bool] = mapped_column(Boolean, default=True)  # False: out of order, kept only
    error_code: Mapped[str | None] = mapped_column(String(16))
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FunnelEvent(Base):
    """When a voter first reached a funnel step of a session's flow."""

    __tablename__ = "funnel_events"
    __table_args__ = (
        UniqueConstraint("session_id", "step", name="uq_funnel_events_session_step"),
        # A voter's timeline reads their funnel steps newest first.
        Index("ix_funnel_events_contact", "contact_id", "reached_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("flow_sessions.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    flow_name: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    reached_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Answer(Base):
    """An answer a voter gave (an ask node's ``save``)."""

    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_session", "session_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("flow_sessions.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    flow_name: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSON)
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class HandoffCase(Base):
    """A conversation handed to a person; while open, the bot stays quiet."""

    __tablename__ = "handoff_cases"
    __table_args__ = (
        Index("ix_handoff_cases_contact_status", "contact_id", "status"),
        # The inbox's tabs: open cases, longest waiting first; closed ones, newest first.
        Index("ix_handoff_cases_status_opened", "status", "opened_at", "id"),
        Index("ix_handoff_cases_status_closed", "status", "closed_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("flow_sessions.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(8), default="open")  # open, closed
    # The agent (a console user's id; users live in the web layer, so no foreign key here).
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(30))
    reason: Mapped[str | None] = mapped_column(String(500))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
