"""Variable bindings: where each ``{{n}}`` of a campaign's template takes its value.

A binding is plain data (campaign spec, API, console)::

    variables:
      1: {contact: name}                       # name, phone or language of the voter
      2: {tag: ward}                           # the value of a valued tag (ward=12)
      3: {field: booth_no}                     # a custom field of the contact
      4: {answer: booth_locator.epic}          # an answer the voter gave in a flow
      5: {text: "Sunday 1 December"}          # the same text for everyone
      6: {tag: ward, default: "your ward"}     # a default: never missing

A voter for whom a binding without a default has no value is skipped at launch with
``missing_variable``: the planner asks :func:`present` for one SQL condition, so no
voter is looked at in Python. At send time :class:`Values` fetches the values of a whole
chunk of voters in three queries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select, true
from sqlalchemy.orm import Session

from bot import bulk
from bot.contacts import normalize_tag_name
from bot.models import Answer, Contact, ContactTag

CONTACT_COLUMNS = {"name": Contact.name, "phone": Contact.phone, "language": Contact.language}
KINDS = ("text", "contact", "tag", "field", "answer")
MAX_TEXT = 1024


class BindingError(ValueError):
    """A binding is wrong; ``field`` names it (``variables.2.tag``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclasses.dataclass(frozen=True)
class Binding:
    """Where one placeholder's value comes from."""

    kind: str  # text, contact, tag, field, answer
    source: str  # the text itself, a column, a tag or field name, or "flow.save"
    default: str | None = None

    def spec(self) -> dict[str, str]:
        """Back to plain data (stored on the campaign)."""
        out = {self.kind: self.source}
        if self.default is not None:
            out["default"] = self.default
        return out


def parse(raw: Any, *, field: str = "variables") -> dict[str, Binding]:
    """Read bindings from plain data; keys are placeholder numbers (``1`` or ``"1"``)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise BindingError(field, "must be a mapping of placeholder numbers to bindings, e.g. 1: {contact: name}")
    out: dict[str, Binding] = {}
    for key, value in raw.items():
        number = str(key).strip().strip("{}").strip()
        here = f"{field}.{number}"
        if not number.isdigit() or int(number) < 1:
            raise BindingError(f"{field}.{key}", "placeholders are numbered from 1 ({{1}}, {{2}}, ...)")
        out[str(int(number))] = _binding(value, here)
    return out


def _binding(value: Any, field: str) -> Binding:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return _checked(Binding("text", str(value)), field)
    if not isinstance(value, Mapping):
        raise BindingError(field, f"must be text or one of {{{', '.join(k + ': ...' for k in KINDS)}}}")
    kinds = [k for k in value if k in KINDS]
    unknown = sorted(str(k) for k in value if k not in KINDS and k != "default")
    if unknown:
        raise BindingError(field, f"unknown key {unknown[0]!r} (expected one of {', '.join(KINDS)}, default)")
    if len(kinds) != 1:
        raise BindingError(field, f"give exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    source = value[kind]
    if not isinstance(source, str | int | float) or isinstance(source, bool) or str(source).strip() == "":
        raise BindingError(f"{field}.{kind}", "must be non-empty text")
    default = value.get("default")
    if default is not None and not isinstance(default, str | int | float):
        raise BindingError(f"{field}.default", "must be text")
    return _checked(Binding(kind, str(source).strip(), None if default is None else str(default)), field)


def _checked(binding: Binding, field: str) -> Binding:
    if binding.kind == "text" and len(binding.source) > MAX_TEXT:
        raise BindingError(f"{field}.text", f"at most {MAX_TEXT} characters")
    if binding.kind == "contact" and binding.source not in CONTACT_COLUMNS:
        raise BindingError(f"{field}.contact", f"must be one of {', '.join(CONTACT_COLUMNS)}, got {binding.source!r}")
    if binding.kind == "tag":
        try:
            binding = dataclasses.replace(binding, source=normalize_tag_name(binding.source))
        except ValueError as exc:
            raise BindingError(f"{field}.tag", str(exc)) from None
    if binding.kind == "answer":
        flow, dot, name = binding.source.partition(".")
        if not (dot and flow and name):
            raise BindingError(
                f"{field}.answer", f"must be FLOW.SAVE_NAME (e.g. booth_locator.epic), got {binding.source!r}"
            )
    return binding


def dump(bindings: Mapping[str, Binding]) -> dict[str, dict[str, str]]:
    """Bindings as stored on a campaign."""
    return {k: b.spec() for k, b in sorted(bindings.items(), key=lambda kv: int(kv[0]))}


def present(bindings: Mapping[str, Binding]) -> ColumnElement[bool]:
    """SQL: true for a contact who has a value for every binding without a default."""
    conditions: list[ColumnElement[bool]] = []
    for b in bindings.values():
        if b.default is not None or b.kind == "text":
            continue
        if b.kind == "contact":
            column = CONTACT_COLUMNS[b.source]
            conditions.append(and_(column.is_not(None), column != ""))
        elif b.kind == "tag":
            conditions.append(
                exists().where(
                    ContactTag.contact_id == Contact.id,
                    ContactTag.name == b.source,
                    ContactTag.value.is_not(None),
                    ContactTag.value != "",
                )
            )
        elif b.kind == "field":
            value = Contact.fields[b.source].as_string()
            conditions.append(and_(value.is_not(None), value != ""))
        elif b.kind == "answer":
            flow, _, name = b.source.partition(".")
            conditions.append(
                exists().where(Answer.contact_id == Contact.id, Answer.flow_name == flow, Answer.name == name)
            )
    return and_(true(), *conditions)


class Values:
    """The values of every binding for a chunk of voters, fetched together.

    ``contacts``: ``Contact`` rows or anything with the same columns (``campaigns.claims.Voter``).
    ``tags``: the voters' tags (contact id -> name -> value) when the caller has them
    already; otherwise they are read here.
    """

    def __init__(
        self,
        db: Session,
        bindings: Mapping[str, Binding],
        contacts: Iterable[Any],
        tags: Mapping[int, Mapping[str, str | None]] | None = None,
    ) -> None:
        self.bindings = dict(bindings)
        self.contacts = {c.id: c for c in contacts}
        ids = list(self.contacts)
        tag_names = {b.source for b in self.bindings.values() if b.kind == "tag"}
        self.tags: dict[tuple[int, str], str] = {}
        if tag_names and tags is not None:
            self.tags = {
                (cid, name): value
                for cid in ids
                for name, value in tags.get(cid, {}).items()
                if name in tag_names and value
            }
        elif tag_names and ids:
            rows = db.execute(
                select(ContactTag.contact_id, ContactTag.name, ContactTag.value).where(
                    bulk.one_of(db, ContactTag.contact_id, ids), ContactTag.name.in_(tag_names)
                )
            )
            self.tags = {(cid, name): value for cid, name, value in rows if value}
        answers = {tuple(b.source.split(".", 1)) for b in self.bindings.values() if b.kind == "answer"}
        self.answers: dict[tuple[int, str, str], Any] = {}
        if answers and ids:
            rows = db.execute(
                select(Answer.contact_id, Answer.flow_name, Answer.name, Answer.value)
                .where(bulk.one_of(db, Answer.contact_id, ids), Answer.flow_name.in_({f for f, _ in answers}))
                .order_by(Answer.answered_at, Answer.id)
            )
            # The latest answer wins (ordered ascending, later rows overwrite).
            for cid, flow, name, value in rows:
                if (flow, name) in answers:
                    self.answers[(cid, flow, name)] = value

    def for_contact(self, contact_id: int) -> dict[str, str] | None:
        """``{"1": "Asha", ...}`` for one voter, or None when a value is missing."""
        contact = self.contacts[contact_id]
        out: dict[str, str] = {}
        for number, b in self.bindings.items():
            value = self._value(contact, b)
            if value in (None, ""):
                if b.default is None:
                    return None
                value = b.default
            out[number] = str(value)
        return out

    def _value(self, contact: Any, b: Binding) -> Any:
        if b.kind == "text":
            return b.source
        if b.kind == "contact":
            return getattr(contact, b.source)
        if b.kind == "tag":
            return self.tags.get((contact.id, b.source))
        if b.kind == "field":
            return (contact.fields or {}).get(b.source)
        flow, _, name = b.source.partition(".")
        return _answer_text(self.answers.get((contact.id, flow, name)))


def _answer_text(value: Any) -> Any:
    # A choice is saved as its key or label; a structured answer shows its label or value.
    if isinstance(value, Mapping):
        return value.get("label") or value.get("value") or value.get("key")
    return value
