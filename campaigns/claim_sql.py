"""The statements a claim runs again and again, built once per backend.

Built once, a statement keeps its cache key and compiled form: SQLAlchemy spends nothing
on it but binding the values (``bot.bulk.any_of``). ``campaigns.claims`` runs them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from sqlalchemy import BigInteger, bindparam, or_, select, update

from bot import bulk
from bot.models import Contact, ContactTag, FlowSession, Message
from campaigns.models import Recipient

R = Recipient.__table__
M = Message.__table__
S = FlowSession.__table__

NEXT_PENDING = (
    select(R.c.id, R.c.contact_id)
    .where(R.c.campaign_id == bindparam("campaign"), R.c.batch == bindparam("batch"), R.c.status == "pending")
    .where(or_(R.c.retry_at.is_(None), R.c.retry_at <= bindparam("now")))
    .where(R.c.id > bindparam("after"))
    .order_by(R.c.id)
    .limit(bindparam("n"))
)


@dataclasses.dataclass(frozen=True)
class Statements:
    """The statements every claim runs, built once per backend (see ``bulk.any_of``)."""

    claim: Any
    claim_with_ids: Any
    tags: Any
    voters: Any
    supersede: Any
    claimed: bulk.Rows
    give_ids: Any


@functools.cache
def statements(pg: bool) -> Statements:
    """The claim's statements for PostgreSQL (``pg``) or SQLite."""
    C, T = Contact.__table__, ContactTag.__table__
    claimed = bulk.Rows(pg, "claimed", rid=BigInteger(), mid=BigInteger(), sid=BigInteger())
    sending = {"status": "sending", "sending_at": bindparam("now"), "attempts": R.c.attempts + 1}
    return Statements(
        claim=update(R)
        .where(bulk.any_of(R.c.id, "ids", pg), R.c.status == "pending")
        .values(sending)
        .returning(R.c.id),
        claim_with_ids=update(R)
        .where(claimed.match(R.c.id, "rid"), R.c.status == "pending")
        .values({**sending, "message_id": claimed.c.mid, "session_id": claimed.c.sid})
        .returning(R.c.id),
        tags=select(T.c.contact_id, T.c.name, T.c.value)
        .where(bulk.any_of(T.c.contact_id, "ids", pg))
        .order_by(T.c.contact_id, T.c.name),
        voters=select(C.c.id, C.c.phone, C.c.name, C.c.language, C.c.timezone, C.c.fields, C.c.consent).where(
            bulk.any_of(C.c.id, "ids", pg)
        ),
        supersede=update(S)
        .where(bulk.any_of(S.c.contact_id, "ids", pg), S.c.channel == bindparam("on_channel"), S.c.status != "ended")
        .values(status="ended", end_reason="superseded", ended_at=bindparam("now"), timeout_at=None),
        claimed=claimed,
        give_ids=update(R)
        .where(claimed.match(R.c.id, "rid"))
        .values(message_id=claimed.c.mid, session_id=claimed.c.sid),
    )
