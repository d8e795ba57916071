"""A voter's timeline: messages with their statuses, funnel steps, consent, handoff cases.

Each kind of entry comes from one table, described by a :class:`Source` registered in
``SOURCES`` by name. A page of the timeline is one query per source (the newest rows
older than a cursor), merged in Python: the query count does not grow with the number of
entries. Calls join from the voice layer: ``ivr`` registers a ``call`` source of its own
with :func:`register` (``bot`` cannot import ``ivr``), and the console shows it in its
"call" section.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.models import ConsentEvent, FunnelEvent, HandoffCase, Message

Entry = dict[str, Any]


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@dataclasses.dataclass(frozen=True)
class Source:
    """One kind of timeline entry: its table, its time column and what a row says."""

    kind: str
    model: Any  # a mapped class with ``id`` and ``contact_id``
    time: InstrumentedAttribute[dt.datetime]
    fields: Callable[[Any], Entry]  # the row's own fields (kind, at and id are added)
    # Breaks ties between kinds at the same microsecond (higher shows first, newest first).
    rank: int

    def entry(self, row: Any) -> Entry:
        """The row as a timeline entry: ``kind``, ``at`` (ISO-8601 UTC), ``id``, then its fields."""
        return {"kind": self.kind, "at": _iso(getattr(row, self.time.key)), "id": row.id, **self.fields(row)}


def _message(m: Message) -> Entry:
    return {
        "direction": m.direction,
        "channel": m.channel,
        "body": m.body,
        "status": m.status,
        "error_code": m.error_code,
        "node": m.node,
        "purpose": m.purpose,
        "campaign_id": m.campaign_id,
        "sent_at": _iso(m.sent_at),
        "delivered_at": _iso(m.delivered_at),
        "read_at": _iso(m.read_at),
    }


def _funnel(f: FunnelEvent) -> Entry:
    return {"flow": f.flow_name, "step": f.step}


def _consent(c: ConsentEvent) -> Entry:
    return {"status": c.status, "channel": c.channel, "source": c.source}


def _handoff(h: HandoffCase) -> Entry:
    return {"status": h.status, "note": h.note, "reason": h.reason, "closed_at": _iso(h.closed_at)}


SOURCES: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Add a kind of entry to every timeline (the voice layer adds calls this way)."""
    SOURCES[source.kind] = source
    return source


register(Source("consent", ConsentEvent, ConsentEvent.created_at, _consent, rank=1))
register(Source("handoff", HandoffCase, HandoffCase.opened_at, _handoff, rank=2))
register(Source("funnel", FunnelEvent, FunnelEvent.reached_at, _funnel, rank=3))
register(Source("message", Message, Message.created_at, _message, rank=4))


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where a page of the timeline stops: entries after it are older."""

    time: dt.datetime
    kind: str
    id: int

    def __str__(self) -> str:
        return f"{self.time.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S.%fZ')}.{self.kind}.{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Read a cursor from a link; raise ``ValueError`` naming ``before`` when it is wrong."""
        try:
            stamp, _, rest = text.rpartition("Z.")
            kind, _, number = rest.partition(".")
            time = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=dt.UTC)
            if kind not in SOURCES:
                raise ValueError(kind)
            return cls(time, kind, int(number))
        except ValueError:
            raise ValueError(f"before: not a timeline position, got {text!r}") from None


@dataclasses.dataclass(frozen=True)
class Page:
    """Entries newest first, and the cursor of the next (older) page when there is one."""

    entries: list[Entry]
    older: Cursor | None


def _older_than(source: Source, cursor: Cursor) -> ColumnElement[bool]:
    """Rows of ``source`` that come after ``cursor`` in newest-first order."""
    mine = SOURCES[cursor.kind].rank
    if source.rank == mine:
        same_time: ColumnElement[bool] = source.model.id < cursor.id
    else:
        same_time = true() if source.rank < mine else false()
    return or_(source.time < cursor.time, and_(source.time == cursor.time, same_time))


def page(db: Session, contact_id: int, *, before: Cursor | None = None, limit: int = 50) -> Page:
    """One page of a voter's timeline, newest first: one query per source."""
    found: list[tuple[tuple[dt.datetime, int, int], Source, Any]] = []
    for source in SOURCES.values():
        stmt = select(source.model).where(source.model.contact_id == contact_id)
        if before is not None:
            stmt = stmt.where(_older_than(source, before))
        stmt = stmt.order_by(source.time.desc(), source.model.id.desc()).limit(limit + 1)
        for row in db.scalars(stmt):
            found.append(((getattr(row, source.time.key), source.rank, row.id), source, row))
    found.sort(key=lambda item: item[0], reverse=True)
    shown = found[:limit]
    older = None
    if len(found) > limit:
        (time, _rank, row_id), source, _row = shown[-1]
        older = Cursor(time, source.kind, row_id)
    return Page([source.entry(row) for _key, source, row in shown], older)


def timeline(db: Session, contact_id: int, *, limit: int = 200) -> list[Entry]:
    """The newest ``limit`` entries of each kind, merged oldest first."""
    entries: list[tuple[tuple[dt.datetime, int], Entry]] = []
    for source in SOURCES.values():
        stmt = select(source.model).where(source.model.contact_id == contact_id).order_by(source.model.id.desc())
        for row in db.scalars(stmt.limit(limit)):
            entries.append(((getattr(row, source.time.key), row.id), source.entry(row)))
    # Microsecond times decide the order (the shown times are to the second).
    entries.sort(key=lambda e: e[0])
    return [entry for _key, entry in entries]
