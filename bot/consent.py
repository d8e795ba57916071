"""The consent ledger: append-only opt-in / opt-out entries per contact.

A voter who opts out on any channel is opted out on all of them, and opting back in on
any channel restores them (as RapidPro's "stopped" contacts work): the ledger keeps the
channel and source of every entry, and the current status is the latest entry's.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.models import Channel, ConsentEvent, ConsentStatus, Contact

SOURCES = ("import", "keyword", "keypad", "console", "api", "cli", "provider", "flow")


class ConsentLedger:
    """Records consent changes and answers what a contact's consent is now."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        contact: Contact,
        status: ConsentStatus | str,
        *,
        source: str,
        channel: Channel | str | None = None,
        note: str | None = None,
    ) -> ConsentEvent:
        """Append an entry and update the contact's cached status in the same transaction."""
        status = ConsentStatus(status)
        if status is ConsentStatus.UNKNOWN:
            raise ValueError("status must be opted_in or opted_out, got 'unknown'")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        channel_value = Channel(channel).value if channel is not None else None
        if contact.id is None:
            self.session.flush()
        event = ConsentEvent(
            contact_id=contact.id, status=status.value, channel=channel_value, source=source, note=note
        )
        self.session.add(event)
        self.session.flush()
        self.session.execute(update(Contact).where(Contact.id == contact.id).values(consent=status.value))
        contact.consent = status.value
        return event

    def history(self, contact_id: int) -> list[ConsentEvent]:
        """Every entry for a contact, oldest first."""
        stmt = select(ConsentEvent).where(ConsentEvent.contact_id == contact_id).order_by(ConsentEvent.id)
        return list(self.session.scalars(stmt))

    def status_of(self, contact_id: int) -> ConsentStatus:
        """Derive the current status from the ledger itself (not the cached column)."""
        stmt = (
            select(ConsentEvent.status)
            .where(ConsentEvent.contact_id == contact_id)
            .order_by(ConsentEvent.id.desc())
            .limit(1)
        )
        latest = self.session.scalar(stmt)
        return ConsentStatus(latest) if latest else ConsentStatus.UNKNOWN
