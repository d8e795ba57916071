"""REST API: segments, counted and previewed (the same conditions campaigns target)."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.models import Contact
from bot.segments import SegmentError, contact_ids, count
from web.api import bp, json_body
from web.api.contacts import contact_json
from web.auth.access import read_only, requires
from web.context import db_session
from web.errors import BadInput
from web.models import Role

MAX_PREVIEW = 100


def _segment(body: dict[str, Any]) -> Any:
    return body.get("segment")


def _refused(exc: SegmentError) -> BadInput:
    return BadInput(str(exc), field=f"segment.{exc.path}" if exc.path else "segment")


@bp.post("/segments/count")
@requires(Role.VIEWER)
@read_only
def segment_count() -> Any:
    """Count the contacts a segment selects: ``{"segment": {...}}``."""
    try:
        n = count(db_session(), _segment(json_body()))
    except SegmentError as exc:
        raise _refused(exc) from None
    return jsonify({"count": n})


@bp.post("/segments/preview")
@requires(Role.VIEWER)
@read_only
def segment_preview() -> Any:
    """The count and the first contacts (by id) a segment selects: ``{"segment": {...}, "limit": 10}``."""
    body = json_body()
    limit = body.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PREVIEW:
        raise BadInput(f"must be a whole number from 1 to {MAX_PREVIEW}, got {limit!r}", field="limit")
    s = db_session()
    try:
        total = count(s, _segment(body))
        first = contact_ids(s, _segment(body)).order_by(Contact.id).limit(limit)
    except SegmentError as exc:
        raise _refused(exc) from None
    contacts = s.scalars(
        select(Contact).options(selectinload(Contact.tags)).where(Contact.id.in_(first)).order_by(Contact.id)
    )
    return jsonify({"count": total, "contacts": [contact_json(c) for c in contacts]})
