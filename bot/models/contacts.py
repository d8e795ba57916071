"""Tables of the conversation core: contacts, their tags and the consent ledger."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.db import Base, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Channel(enum.StrEnum):
    """How a voter is reached."""

    WHATSAPP = "whatsapp"
    SMS = "sms"
    VOICE = "voice"


class ConsentStatus(enum.StrEnum):
    """A contact's current consent, derived from the latest ledger entry."""

    UNKNOWN = "unknown"
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class Contact(Base):
    """A voter (or anyone canvass can reach), keyed by an E.164 phone number."""

    __tablename__ = "contacts"
    # Only contacts who ever wrote in are indexed: most imported ones never have.
    __table_args__ = (
        Index(
            "ix_contacts_last_seen_at",
            "last_seen_at",
            postgresql_where=text("last_seen_at IS NOT NULL"),
            sqlite_where=text("last_seen_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    # mobile, fixed_line, fixed_line_or_mobile, voip, ... (see bot.phones)
    phone_kind: Mapped[str] = mapped_column(String(24), default="unknown")
    name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A cache of the consent ledger's latest entry, kept by ConsentLedger only, so
    # that segments can filter a million contacts without a per-row subquery.
    consent: Mapped[str] = mapped_column(String(16), default=ConsentStatus.UNKNOWN.value)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Whether the number has WhatsApp: None until known (True once they write on WhatsApp,
    # False once Twilio says it is not a WhatsApp user: errors 63003 / 63024).
    whatsapp: Mapped[bool | None] = mapped_column(Boolean)

    tags: Mapped[list[ContactTag]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="ContactTag.name"
    )

    def __repr__(self) -> str:
        return f"<Contact {self.id} {self.phone}>"

    @property
    def plain_tags(self) -> list[str]:
        """Tags without a value, sorted."""
        return [t.name for t in self.tags if t.value is None]

    @property
    def valued_tags(self) -> dict[str, str]:
        """Tags with a value (``ward=12``), by name."""
        return {t.name: t.value for t in self.tags if t.value is not None}


class ContactTag(Base):
    """A tag on a contact; a valued tag (``ward=12``) carries a value."""

    __tablename__ = "contact_tags"
    __table_args__ = (Index("ix_contact_tags_name_value", "name", "value", "contact_id"),)

    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(255))

    contact: Mapped[Contact] = relationship(back_populates="tags")


class ConsentEvent(Base):
    """One append-only entry of the consent ledger."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_contact", "contact_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    # The channel the voter used (None: given for every channel, e.g. on import).
    channel: Mapped[str | None] = mapped_column(String(16))
    # Where it came from: import, keyword, console, api, provider, ...
    source: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
