"""Segments: which contacts a campaign targets, as one SQL condition.

A segment is a small tree of plain data (from YAML, JSON or the console's builder)::

    all:
      - tag: volunteer                 # has the tag (with or without a value)
      - tag: ward
        in: ["12", "13"]               # valued tag: eq, ne, in, not_in, prefix
      - not: {consent: opted_out}
      - any:
          - field: language            # name, language, timezone, phone, phone_kind
            eq: hi                     # or a custom field: field: fields.age
          - active_within_days: 30     # last inbound message in the last 30 days
      - segment: Ward 3 non-youth      # a saved segment (bot.models.Segment), by name

``compile_segment`` checks the tree (errors name the path, e.g. ``all[1].in``) and
returns a SQLAlchemy condition over ``Contact``; counting or selecting is then one query
that the database answers from its indexes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import Session

from bot.contacts import normalize_tag_name
from bot.db import utcnow
from bot.models import ConsentStatus, Contact, ContactTag, Segment

COLUMNS = {
    "name": Contact.name,
    "language": Contact.language,
    "timezone": Contact.timezone,
    "phone": Contact.phone,
    "phone_kind": Contact.phone_kind,
}
OPERATORS = ("eq", "ne", "in", "not_in", "prefix", "exists")
MAX_DEPTH = 12
NAME_LENGTH = 80
# Looks a saved segment's definition up by name; None when there is no such segment.
SavedLookup = Callable[[str], Any]


class SegmentError(ValueError):
    """The segment definition is wrong at ``path``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or 'segment'}: {message}")
        self.path = path


def compile_segment(
    spec: Any, *, dialect: str, now: dt.datetime | None = None, saved: SavedLookup | None = None
) -> ColumnElement[bool]:
    """Return the SQL condition for ``spec`` (``None`` or ``{}`` means every contact).

    ``dialect`` (``postgresql`` or ``sqlite``) picks the form of tag tests each planner
    handles best: PostgreSQL turns EXISTS / NOT EXISTS into hash semi- and anti-joins
    (its NOT IN over a large subquery degrades to a nested loop), while SQLite answers
    IN / NOT IN from one temporary index. ``saved`` resolves ``{segment: NAME}``
    conditions (``saved_in(session)``); without it they are refused.
    """
    if spec is None or spec == {}:
        return true()
    return _Compiler(dialect, now or utcnow(), saved).node(spec, "", 0)


def check(spec: Any) -> None:
    """Check ``spec``'s shape without a database; a saved segment's name is taken on trust.

    Whether a named segment exists is known only against the database (``condition``),
    as for the sender, template and flow a campaign names.
    """
    compile_segment(spec, dialect="sqlite", saved=lambda _name: {})


def saved_in(session: Session) -> SavedLookup:
    """Look saved segments up in ``session``'s database."""

    def lookup(name: str) -> Any:
        return session.scalar(select(Segment.spec).where(Segment.name == name))

    return lookup


def condition(session: Session, spec: Any) -> ColumnElement[bool]:
    """The SQL condition for ``spec`` on ``session``'s database, saved segments resolved."""
    return compile_segment(spec, dialect=session.get_bind().dialect.name, saved=saved_in(session))


def count(session: Session, spec: Any) -> int:
    """How many contacts the segment selects (the console's live preview)."""
    return session.scalar(select(func.count()).select_from(Contact).where(condition(session, spec))) or 0


def contact_ids(session: Session, spec: Any) -> Select[tuple[int]]:
    """A SELECT of the segment's contact ids, to use inside bulk INSERT ... SELECT."""
    return select(Contact.id).where(condition(session, spec))


def named_segments(spec: Any) -> set[str]:
    """The saved segments ``spec`` names directly (not those they name in turn)."""
    found: set[str] = set()
    items = spec if isinstance(spec, list) else list(spec.items()) if isinstance(spec, Mapping) else []
    for item in items:
        if isinstance(item, tuple):
            key, value = item
            if key == "segment" and isinstance(value, str):
                found.add(value)
                continue
            item = value
        found |= named_segments(item)
    return found


def segment_name(text: Any) -> str:
    """A saved segment's name, trimmed: 1 to 80 printable characters."""
    name = " ".join(str(text or "").split())
    if not name or len(name) > NAME_LENGTH or not name.isprintable():
        raise ValueError(f"a name of 1 to {NAME_LENGTH} printable characters is required, got {text!r}")
    return name


class _Compiler:
    def __init__(self, dialect: str, now: dt.datetime, saved: SavedLookup | None) -> None:
        self.dialect = dialect
        self.now = now
        self.saved = saved
        # The saved segments being expanded, outermost first: a loop among them is an error.
        self.expanding: list[str] = []

    def node(self, spec: Any, path: str, depth: int) -> ColumnElement[bool]:
        return _node(self, spec, path, depth)

    def with_tag(self, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        """Contacts that have a tag row matching ``conditions``."""
        if self.dialect == "postgresql":
            return exists().where(ContactTag.contact_id == Contact.id, *conditions)
        return Contact.id.in_(select(ContactTag.contact_id).where(*conditions))


def _node(c: _Compiler, spec: Any, path: str, depth: int) -> ColumnElement[bool]:
    if depth > MAX_DEPTH:
        raise SegmentError(path, f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(spec, Mapping):
        raise SegmentError(path, f"must be a mapping such as {{tag: volunteer}}, got {type(spec).__name__}")
    for group, combine in (("all", and_), ("any", or_)):
        if group in spec:
            _only(spec, {group}, path)
            items = spec[group]
            if not isinstance(items, list) or not items:
                raise SegmentError(_join(path, group), "must be a non-empty list of conditions")
            parts = [c.node(item, f"{_join(path, group)}[{i}]", depth + 1) for i, item in enumerate(items)]
            return combine(*parts)
    if "not" in spec:
        _only(spec, {"not"}, path)
        return not_(c.node(spec["not"], _join(path, "not"), depth + 1))
    if "tag" in spec:
        return _tag(c, spec, path)
    if "segment" in spec:
        return _saved(c, spec, path, depth)
    if "field" in spec:
        return _field(spec, path)
    if "consent" in spec:
        _only(spec, {"consent"}, path)
        wanted = spec["consent"] if isinstance(spec["consent"], list) else [spec["consent"]]
        values = [ConsentStatus.__members__.get(str(v).upper()) for v in wanted]
        if not wanted or None in values:
            allowed = ", ".join(s.value for s in ConsentStatus)
            raise SegmentError(
                _join(path, "consent"), f"must be {allowed} (or a list of them), got {spec['consent']!r}"
            )
        return Contact.consent.in_([v.value for v in values if v is not None])
    for key, active in (("active_within_days", True), ("inactive_for_days", False)):
        if key in spec:
            _only(spec, {key}, path)
            days = spec[key]
            if not isinstance(days, int) or isinstance(days, bool) or not 0 < days <= 3650:
                raise SegmentError(_join(path, key), f"must be a whole number of days from 1 to 3650, got {days!r}")
            since = c.now - dt.timedelta(days=days)
            if active:
                return Contact.last_seen_at >= since
            return or_(Contact.last_seen_at.is_(None), Contact.last_seen_at < since)
    keys = ", ".join(sorted(map(str, spec))) or "nothing"
    raise SegmentError(
        path,
        f"unknown condition ({keys}); use all, any, not, tag, field, consent, segment, "
        "active_within_days or inactive_for_days",
    )


def _saved(c: _Compiler, spec: Mapping[str, Any], path: str, depth: int) -> ColumnElement[bool]:
    _only(spec, {"segment"}, path)
    where = _join(path, "segment")
    name = spec["segment"]
    if not isinstance(name, str) or not name.strip():
        raise SegmentError(where, f"must be the name of a saved segment, got {name!r}")
    if c.saved is None:
        raise SegmentError(where, "a saved segment can only be used where the database is at hand")
    if name in c.expanding:
        raise SegmentError(where, f"segment {name!r} includes itself ({' -> '.join([*c.expanding, name])})")
    found = c.saved(name)
    if found is None:
        raise SegmentError(where, f"there is no saved segment named {name!r}")
    if found == {}:
        return true()  # an empty saved segment means every contact, as an empty audience does
    c.expanding.append(name)
    try:
        return c.node(found, f"{where}({name})", depth + 1)
    finally:
        c.expanding.pop()


def _tag(c: _Compiler, spec: Mapping[str, Any], path: str) -> ColumnElement[bool]:
    op, value = _operator(spec, "tag", path)
    try:
        name = normalize_tag_name(str(spec["tag"]))
    except ValueError as exc:
        raise SegmentError(_join(path, "tag"), str(exc)) from None
    tag_value = ContactTag.value
    named = ContactTag.name == name
    if op == "exists":
        return c.with_tag(named)
    if op == "eq":
        return c.with_tag(named, tag_value == value)
    if op == "ne":
        # A contact without the tag at all is "not ward=12" too.
        return not_(c.with_tag(named, tag_value == value))
    if op == "in":
        return c.with_tag(named, tag_value.in_(value))
    if op == "not_in":
        return not_(c.with_tag(named, tag_value.in_(value)))
    return c.with_tag(named, tag_value.startswith(value, autoescape=True))


def _field(spec: Mapping[str, Any], path: str) -> ColumnElement[bool]:
    op, value = _operator(spec, "field", path)
    name = str(spec["field"])
    if name in COLUMNS:
        column: Any = COLUMNS[name]
    elif name.startswith("fields.") and len(name) > 7:
        column = Contact.fields[name[7:]].as_string()
    else:
        known = ", ".join(COLUMNS)
        raise SegmentError(_join(path, "field"), f"unknown field {name!r}; use {known} or fields.<name>")
    if op == "exists":
        return column.is_not(None) & (column != "")
    if op == "eq":
        return column == value
    if op == "ne":
        return or_(column.is_(None), column != value)
    if op == "in":
        return column.in_(value)
    if op == "not_in":
        return or_(column.is_(None), column.not_in(value))
    return column.startswith(value, autoescape=True) if value else false()


def _operator(spec: Mapping[str, Any], subject: str, path: str) -> tuple[str, Any]:
    ops = [k for k in spec if k != subject]
    unknown = [k for k in ops if k not in OPERATORS]
    if unknown:
        raise SegmentError(_join(path, str(unknown[0])), f"unknown operator; use one of {', '.join(OPERATORS)}")
    if len(ops) > 1:
        raise SegmentError(path, f"one operator per condition, got {', '.join(ops)}")
    if not ops:
        return "exists", None
    op, value = ops[0], spec[ops[0]]
    where = _join(path, op)
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise SegmentError(where, "must be a non-empty list of values")
        return op, [_scalar(v, where) for v in value]
    if op == "exists":
        if value is not True:
            raise SegmentError(where, "must be true (use not: to ask for a missing one)")
        return op, None
    return op, _scalar(value, where)


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SegmentError(where, f"must be text or a number, got {value!r}")
    return str(value)


def _only(spec: Mapping[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(set(map(str, spec)) - allowed)
    if extra:
        raise SegmentError(_join(path, extra[0]), f"cannot stand beside {', '.join(sorted(allowed))}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
