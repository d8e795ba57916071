"""Tables of campaigns: templates and their language versions, campaigns, recipients.

Statuses are ``str`` enums with the vocabulary of the whole product (console, API,
export): a campaign moves as ``campaigns.lifecycle`` allows; a recipient's delivery status
only moves forward (``bot.models.advances``), and a recipient that will not be sent
carries a skip code instead.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base, UTCDateTime, utcnow
from bot.models import BigId


class CampaignStatus(enum.StrEnum):
    """Where a campaign is in its life (transitions in ``campaigns.lifecycle``)."""

    DRAFT = "draft"
    READY = "ready"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ENDED = "ended"
    ABORTED = "aborted"


class RecipientStatus(enum.StrEnum):
    """Where one voter of a campaign stands."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


class SkipCode(enum.StrEnum):
    """Why a voter of the audience is not sent the campaign."""

    OPTED_OUT = "opted_out"
    MISSING_VARIABLE = "missing_variable"
    ENGAGED_ELSEWHERE = "engaged_elsewhere"
    HANDOFF_OPEN = "handoff_open"
    INVALID_NUMBER = "invalid_number"
    NOT_MOBILE = "not_mobile"
    NO_WHATSAPP = "no_whatsapp"
    OVER_BUDGET = "over_budget"
    OUTSIDE_BLACKOUT = "outside_blackout"


class TemplateStatus(enum.StrEnum):
    """Approval state of a template's language version (WhatsApp's, through Twilio)."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAUSED = "paused"


class Template(Base):
    """A message template: one name, one channel, several language versions."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # whatsapp, sms
    # onboarding, reminder, grievance_update, fundraising, ... (WhatsApp's category follows).
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TemplateVersion(Base):
    """The text of a template in one language; immutable once a campaign used it."""

    __tablename__ = "template_versions"
    __table_args__ = (
        UniqueConstraint("template_id", "language", "version", name="uq_template_versions_template_language"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    # Numbered placeholders {{1}}.. with an example value each (WhatsApp's review needs them).
    samples: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    buttons: Mapped[list[Any]] = mapped_column(JSON, default=list)  # quick-reply titles
    media_url: Mapped[str | None] = mapped_column(String(1000))
    media_kind: Mapped[str | None] = mapped_column(String(16))  # image, video, document
    status: Mapped[str] = mapped_column(String(16), default=TemplateStatus.DRAFT.value)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    content_sid: Mapped[str | None] = mapped_column(String(34))  # Twilio Content API (HX...)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # set: never changed again
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Campaign(Base):
    """An approved message sent to a segment at a pace, with the flow that handles replies."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT.value, index=True)
    # Why a draft is not ready yet (one line per problem), for the console and the CLI.
    problems: Mapped[list[Any]] = mapped_column(JSON, default=list)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    test_numbers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("senders.id"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id"))
    template_language: Mapped[str | None] = mapped_column(String(16))
    # Pinned at launch: later edits of the template never change what this campaign sent.
    template_version_id: Mapped[int | None] = mapped_column(ForeignKey("template_versions.id"))
    # {"1": {"contact": "name"}, "2": {"tag": "ward"}, "3": {"text": "Sunday"}, ...}
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    segment: Mapped[Any] = mapped_column(JSON, default=dict)
    flow_name: Mapped[str | None] = mapped_column(String(64))
    flow_version: Mapped[int | None] = mapped_column(Integer)  # pinned at launch
    # The node the template stands in for (its prompt); the flow's start when not given.
    flow_node: Mapped[str | None] = mapped_column(String(64))
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    pace_per_s: Mapped[float] = mapped_column(Float, default=1.0)
    # Send windows (preset names or {start, end, timezone}) and blackouts of its own, on top
    # of the deployment's (CANVASS_SEND_WINDOW, CANVASS_BLACKOUTS); see bot.sendwindows.
    send_windows: Mapped[list[Any]] = mapped_column(JSON, default=list)
    blackouts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # When it must be done by (polls closing): a voter blacked out until then is skipped.
    deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    batch_size: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    launched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    aborted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    planned: Mapped[int] = mapped_column(Integer, default=0)  # recipient rows made at launch
    # A second attempt on another channel for voters the first did not reach (campaigns.fallback):
    # {"channel", "sender_id", "template_id", "language", "variables", "after_s", "template_version_id"}.
    fallback: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The most it may spend, in millionths of the price table's currency (exact on every backend).
    budget_micros: Mapped[int | None] = mapped_column(BigId)
    # A cap per channel it sends on (its own, its fallback's), in millionths as well:
    # {"whatsapp": 600000000, "sms": 400000000}; each applies on top of the total (campaigns.budgets).
    budget_by_channel: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A call campaign's options (campaigns.voice_options): attempts, retry_after_s, on_machine, ...
    voice: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Recipient(Base):
    """One voter of a campaign: made at launch, sent by a batch job, tracked to the end."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        # Also answers "is this voter engaged in another campaign?" (leading contact_id).
        UniqueConstraint("contact_id", "campaign_id", name="uq_campaign_recipients_contact_campaign"),
        # A batch's rows in id order: the next ones to claim are its first pending entries.
        Index("ix_campaign_recipients_campaign_batch", "campaign_id", "batch", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    batch: Mapped[int | None] = mapped_column(Integer)  # None for skipped rows
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    skip_code: Mapped[str | None] = mapped_column(String(24))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The opening message (the last attempt's) and the flow session it parked.
    message_id: Mapped[int | None] = mapped_column(BigId)
    session_id: Mapped[int | None] = mapped_column(BigId)
    # A call campaign's last call (ivr.models.Call), and when the next attempt may be made.
    call_id: Mapped[int | None] = mapped_column(BigId)
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_msg: Mapped[str | None] = mapped_column(String(500))
    queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sending_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The estimated price of this voter's message, in millionths (see campaigns.pricing).
    cost_micros: Mapped[int | None] = mapped_column(BigId)
    # The fallback attempt's part of ``cost_micros`` (set when the fallback is given; the rest
    # is the first attempt's, 0 when that one was not charged): spend per channel.
    fallback_cost_micros: Mapped[int | None] = mapped_column(BigId)


class Price(Base):
    """What one message costs on a channel to a country (per segment for SMS)."""

    __tablename__ = "prices"
    __table_args__ = (UniqueConstraint("channel", "calling_code", name="uq_prices_channel_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    calling_code: Mapped[str] = mapped_column(String(3))  # 91, 1, 44 ... (no "+")
    micros: Mapped[int] = mapped_column(BigId)  # millionths of the currency
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BudgetRoom(Base):
    """What is left of a campaign's SMS budget for the costs found only at send time.

    An SMS is priced at launch from its template's sample text; a voter's own text (a name
    in Devanagari turns a GSM-7 SMS into UCS-2) may take more segments. The batch job that
    sends it reserves the difference here (``campaigns.sms_costs``), in the claim's own
    transaction; ``micros`` is NULL until counted from the recipients' costs, and is counted
    again (the row locked) when a reservation does not fit.
    """

    __tablename__ = "campaign_budget_rooms"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    micros: Mapped[int | None] = mapped_column(BigId)
    counted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
