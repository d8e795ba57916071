"""Retention: message bodies are kept for a limited time; what happened is kept for good.

Bodies and media links older than ``CANVASS_RETENTION_DAYS`` (30 by default) are erased;
statuses, timestamps, funnel steps and answers stay, so reports and exports still add up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import JSON, bindparam, null, update
from sqlalchemy.orm import Session

from bot.consent import ConsentLedger
from bot.db import Database, utcnow
from bot.models import ConsentStatus, Contact, Message


def purge_bodies(db: Database, days: int, *, now: dt.datetime | None = None) -> int:
    """Erase message bodies older than ``days``; return how many messages were purged."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    with db.session() as s:
        result = s.execute(
            update(Message)
            .where(Message.created_at < cutoff, Message.body.is_not(None))
            .values(body=None, media=bindparam("empty", [], type_=JSON))
        )
        return result.rowcount or 0


@dataclasses.dataclass(frozen=True)
class Erased:
    """What erasing a contact did."""

    contact_id: int
    messages: int  # message bodies erased


def erase_contact(session: Session, contact_id: int, *, source: str = "api") -> Erased:
    """Erase what a contact said and who they are now, as retention does after its days.

    The bodies and media of their messages go at once, as do their name, language,
    fields and tags; statuses, times, funnel steps and answers stay, so campaign reports
    and exports still add up. The number stays, opted out in the consent ledger, so that
    no campaign or flow reaches them again and a later import cannot bring them back in.
    """
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise LookupError(f"no contact {contact_id}")
    result = session.execute(
        update(Message)
        .where(Message.contact_id == contact_id, Message.body.is_not(None))
        .values(body=None, media=bindparam("empty", [], type_=JSON), content_variables=null())
    )
    contact.name = contact.language = None
    contact.fields = {}
    contact.tags[:] = []
    if contact.consent != ConsentStatus.OPTED_OUT:
        ConsentLedger(session).record(contact, ConsentStatus.OPTED_OUT, source=source, note="erased on request")
    session.flush()
    return Erased(contact_id, result.rowcount or 0)
