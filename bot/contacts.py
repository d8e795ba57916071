"""Contacts: tags, manual entry and the CSV export."""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterable, Iterator
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Contact, ContactTag
from bot.phones import InvalidPhone, PhoneParser
from bot.spreadsheet import formula_safe

MAX_MANUAL = 50
TAG_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
EXPORT_COLUMNS = ("phone", "name", "language", "timezone", "tags", "valued_tags", "consent")


@dataclasses.dataclass(frozen=True, slots=True)
class Tag:
    """A tag as written by a person: ``volunteer`` or ``ward=12``."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}={self.value}"


def parse_tag(text: str) -> Tag:
    """Parse ``name`` or ``name=value``; raise ValueError naming what is wrong."""
    name, sep, value = text.partition("=")
    name = normalize_tag_name(name)
    if not sep:
        return Tag(name)
    value = value.strip()
    if not value:
        raise ValueError(f"tag {text!r}: value after '=' is empty")
    if len(value) > 255:
        raise ValueError(f"tag {name!r}: value is longer than 255 characters")
    return Tag(name, value)


def normalize_tag_name(text: str) -> str:
    """Lower-case a tag name and check it: letters, digits, ``_ . -``, up to 64."""
    name = text.strip().lower().replace(" ", "_")
    if not TAG_NAME.match(name):
        raise ValueError(
            f"tag name {text.strip()!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def apply_tags(session: Session, contact: Contact, tags: Iterable[Tag]) -> None:
    """Add tags to a contact; a valued tag replaces that tag's earlier value."""
    current = {t.name: t for t in contact.tags}
    for tag in tags:
        existing = current.get(tag.name)
        if existing is None:
            new = ContactTag(name=tag.name, value=tag.value)
            contact.tags.append(new)
            current[tag.name] = new
        elif tag.value is not None:
            existing.value = tag.value


def remove_tags(contact: Contact, names: Iterable[str]) -> None:
    """Remove tags by name (valued or not)."""
    drop = {normalize_tag_name(n) for n in names}
    contact.tags[:] = [t for t in contact.tags if t.name not in drop]


@dataclasses.dataclass
class AddResult:
    """What ``add_numbers`` did."""

    created: list[Contact] = dataclasses.field(default_factory=list)
    updated: list[Contact] = dataclasses.field(default_factory=list)
    rejected: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def add_numbers(session: Session, parser: PhoneParser, numbers: Iterable[str], tags: Iterable[Tag] = ()) -> AddResult:
    """Create (or tag) contacts for numbers typed by hand; up to 50 at a time."""
    numbers = list(numbers)
    if len(numbers) > MAX_MANUAL:
        raise ValueError(f"numbers: at most {MAX_MANUAL} at a time, got {len(numbers)}; use contacts import for more")
    tags = list(tags)
    result = AddResult()
    seen: set[str] = set()
    for text in numbers:
        try:
            phone = parser.parse(text)
        except InvalidPhone as exc:
            result.rejected.append((text, exc.reason))
            continue
        if phone.e164 in seen:
            result.rejected.append((text, f"duplicate of {phone.e164} given earlier"))
            continue
        seen.add(phone.e164)
        contact = session.scalar(select(Contact).where(Contact.phone == phone.e164))
        if contact is None:
            contact = Contact(phone=phone.e164, phone_kind=phone.kind, timezone=phone.timezone, fields={})
            session.add(contact)
            result.created.append(contact)
        else:
            result.updated.append(contact)
        apply_tags(session, contact, tags)
    session.flush()
    return result


def contact_for(session: Session, parser: PhoneParser, phone: str, *, name: str | None = None) -> Contact:
    """The contact of a number that wrote or called us; a number never seen before becomes one.

    ``name`` (a WhatsApp profile name, say) fills in a contact that has none.
    """
    parsed = parser.parse(phone)
    contact = session.scalar(select(Contact).where(Contact.phone == parsed.e164))
    if contact is None:
        # tags=[]: a new voter has none, and saying so spares a query when a flow reads them.
        contact = Contact(
            phone=parsed.e164, phone_kind=parsed.kind, timezone=parsed.timezone, fields={}, tags=[], name=name
        )
        session.add(contact)
    elif name and not contact.name:
        contact.name = name
    return contact


def export_rows(session: Session, chunk: int = 5000) -> Iterator[list[str]]:
    """Yield the export's rows (header first), reading contacts in id order by chunks."""
    yield list(EXPORT_COLUMNS)
    last_id = 0
    while True:
        contacts = list(session.scalars(select(Contact).where(Contact.id > last_id).order_by(Contact.id).limit(chunk)))
        if not contacts:
            return
        ids = [c.id for c in contacts]
        tags: dict[int, list[ContactTag]] = {}
        for tag in session.scalars(select(ContactTag).where(ContactTag.contact_id.in_(ids)).order_by(ContactTag.name)):
            tags.setdefault(tag.contact_id, []).append(tag)
        for c in contacts:
            own = tags.get(c.id, [])
            yield [
                c.phone,  # plain E.164: the one column that may start with '+'
                formula_safe(c.name),
                formula_safe(c.language),
                formula_safe(c.timezone),
                formula_safe(";".join(t.name for t in own if t.value is None)),
                formula_safe(";".join(f"{t.name}={t.value}" for t in own if t.value is not None)),
                c.consent,
            ]
        last_id = ids[-1]
        session.expunge_all()


def write_export(session: Session, out: IO[str]) -> int:
    """Write the contacts CSV to ``out``; return how many contacts were written."""
    writer = csv.writer(out, lineterminator="\n")
    count = -1
    for row in export_rows(session):
        writer.writerow(row)
        count += 1
    return count
