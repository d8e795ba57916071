"""The contacts list: search and filters, a page at a time, fast on a million contacts.

Every filter is a segment condition (``bot.segments``), so the list selects exactly the
contacts a campaign with the same audience would. Pages follow the id downwards (keyset:
``?before=ID`` / ``?after=ID``) instead of an OFFSET that reads every skipped row, the
tags of a page come in one more query, and the total is counted only up to ``COUNT_CAP``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import render_template, request
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, selectinload

from bot.models import ConsentStatus, Contact
from bot.saved_segments import listing
from bot.segments import SegmentError, condition
from web.auth.access import requires
from web.console import bp
from web.console.segment_form import FIELDS, matching
from web.context import db_session
from web.models import Role

PAGE = 50
COUNT_CAP = 10_000
LABELS = {"tag": "Tag", "field": "Field", "consent": "Consent", "segment": "Segment"}


@dataclasses.dataclass
class Filters:
    """The list's filters as given in the query string."""

    q: str = ""
    tag: str = ""
    field: str = ""
    value: str = ""
    consent: str = ""
    segment: str = ""

    @classmethod
    def from_args(cls, args: Any) -> Filters:
        """Read the filters from ``request.args``."""
        return cls(**{f.name: args.get(f.name, "").strip() for f in dataclasses.fields(cls)})

    def query(self, **extra: Any) -> dict[str, Any]:
        """The filters (and ``extra``) for ``url_for``, empty ones left out."""
        return {k: v for k, v in {**dataclasses.asdict(self), **extra}.items() if v not in ("", None)}

    def conditions(self) -> list[tuple[str, dict[str, Any]]]:
        """Each filter given, as ``(filter name, segment condition)``."""
        found: list[tuple[str, dict[str, Any]]] = []
        if self.tag:
            # ``ward`` has the tag; ``ward=12`` or ``ward=12,13`` has one of those values.
            name, has_value, value = self.tag.partition("=")
            found.append(("tag", {"tag": name.strip(), **(matching(value) if has_value else {})}))
        if self.field:
            found.append(("field", {"field": self.field, **matching(self.value)}))
        if self.consent:
            found.append(("consent", {"consent": self.consent}))
        if self.segment:
            found.append(("segment", {"segment": self.segment}))
        return found


def compiled(s: Session, filters: Filters) -> tuple[list[ColumnElement[bool]], dict[str, str]]:
    """The SQL conditions of ``filters``, and an error per filter that is wrong."""
    where: list[ColumnElement[bool]] = []
    errors: dict[str, str] = {}
    for name, spec in filters.conditions():
        try:
            where.append(condition(s, spec))
        except SegmentError as exc:
            # The message without the segment path: the field is named by the label.
            errors[name] = f"{LABELS[name]}: {str(exc).split(': ', 1)[-1]}"
    if filters.q:
        like = f"%{filters.q}%"
        where.append(or_(Contact.phone.like(like), Contact.name.ilike(like)))
    return where, errors


def capped_count(s: Session, where: list[ColumnElement[bool]], cap: int = COUNT_CAP) -> int:
    """How many contacts match, counting no further than ``cap`` + 1."""
    limited = select(Contact.id).where(*where).limit(cap + 1).subquery()
    return s.scalar(select(func.count()).select_from(limited)) or 0


@bp.get("/contacts")
@requires(Role.VIEWER)
def contacts() -> Any:
    """Contacts by phone or name, tag or valued tag, field, consent and saved segment."""
    s = db_session()
    filters = Filters.from_args(request.args)
    where, errors = compiled(s, filters)
    before = request.args.get("before", type=int)
    after = request.args.get("after", type=int)
    rows: list[Contact] = []
    total = 0
    if not errors:
        total = capped_count(s, where)
        stmt = select(Contact).where(*where).options(selectinload(Contact.tags)).limit(PAGE + 1)
        if after is not None:
            # Going back up: the PAGE ids just above ``after``, shown newest first.
            rows = list(s.scalars(stmt.where(Contact.id > after).order_by(Contact.id)))
            more_newer = len(rows) > PAGE
            rows = list(reversed(rows[:PAGE]))
            more_older = True
        else:
            if before is not None:
                stmt = stmt.where(Contact.id < before)
            rows = list(s.scalars(stmt.order_by(Contact.id.desc())))
            more_older = len(rows) > PAGE
            rows = rows[:PAGE]
            more_newer = before is not None
    else:
        more_newer = more_older = False
    return render_template(
        "console/contacts.html",
        contacts=rows,
        total=total,
        capped=total > COUNT_CAP,
        cap=COUNT_CAP,
        filters=filters,
        newer=filters.query(after=rows[0].id) if rows and more_newer else None,
        older=filters.query(before=rows[-1].id) if rows and more_older else None,
        errors=errors,
        statuses=[c.value for c in ConsentStatus],
        fields=FIELDS,
        segments=[seg.name for seg in listing(s)],
    )
