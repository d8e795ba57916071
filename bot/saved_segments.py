"""Saved segments: keep a segment definition under a name, change it, delete it.

The console's segment builder saves here; campaign specs name a saved segment with
``audience: {segment: NAME}`` and ``bot.segments`` reads its definition when it compiles.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Segment
from bot.segments import SegmentError, condition, named_segments, segment_name


class SavedSegmentError(ValueError):
    """A saved segment cannot be stored as asked; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def save(session: Session, name: str, spec: Any, *, by: str | None, segment_id: int | None = None) -> Segment:
    """Create a saved segment, or change segment ``segment_id``; checks name and definition.

    The definition is compiled against the database first, so a segment naming another
    one (or itself, through a loop) that does not resolve is refused here.
    """
    try:
        clean = segment_name(name)
    except ValueError as exc:
        raise SavedSegmentError("name", str(exc)) from None
    if not isinstance(spec, dict):
        raise SavedSegmentError("segment", f"must be a mapping such as {{tag: volunteer}}, got {spec!r}")
    taken = session.scalar(select(Segment).where(Segment.name == clean))
    if taken is not None and taken.id != segment_id:
        raise SavedSegmentError("name", f"there is already a segment named {clean!r}")
    if segment_id is None:
        segment = Segment(name=clean, spec={}, updated_by=by)
    else:
        found = session.get(Segment, segment_id)
        if found is None:
            raise LookupError(f"there is no segment {segment_id}")
        segment = found
    try:
        # Checked as it would be used: another saved segment it names must exist, and
        # naming itself (directly or through others) is a loop.
        condition(session, spec)
        if clean in _names_within(session, spec):
            raise SegmentError("segment", f"segment {clean!r} cannot include itself")
    except SegmentError as exc:
        raise SavedSegmentError("segment", str(exc)) from None
    segment.name, segment.spec, segment.updated_by = clean, spec, by
    session.add(segment)
    session.flush()
    return segment


def delete(session: Session, segment_id: int) -> Segment:
    """Delete segment ``segment_id`` and return it (campaigns that name it must be checked first)."""
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise LookupError(f"there is no segment {segment_id}")
    session.delete(segment)
    session.flush()
    return segment


def listing(session: Session, limit: int = 500) -> list[Segment]:
    """Saved segments by name (a team keeps tens of them, not thousands)."""
    return list(session.scalars(select(Segment).order_by(Segment.name).limit(limit)))


def _names_within(session: Session, spec: Any) -> set[str]:
    """Every saved segment ``spec`` names, directly or through the segments it names."""
    seen: set[str] = set()
    todo = named_segments(spec)
    while todo:
        name = todo.pop()
        seen.add(name)
        todo |= named_segments(session.scalar(select(Segment.spec).where(Segment.name == name))) - seen
    return seen
