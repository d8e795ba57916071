"""Changing one contact by hand (the API, the console): its details, tags and fields; deleting it.

Changes follow JSON merge-patch rules: a key left out is left alone; ``tags`` (a list)
replaces the plain tags; ``valued_tags`` and ``fields`` (objects) merge, and a ``null``
value removes that name. Every mistake raises ``ContactEditError`` naming the field.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, delete, exists, select
from sqlalchemy.orm import Session

from bot.contacts import normalize_tag_name, parse_tag
from bot.db import Base
from bot.import_rows import LANGUAGE, MAX_NAME
from bot.models import Contact, ContactTag

EDITABLE = ("name", "language", "timezone", "tags", "valued_tags", "fields")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")  # as a flow's ``set: fields:`` names them
MAX_FIELDS = 100
MAX_FIELD_TEXT = 1000
MAX_TAGS = 200


class ContactEditError(ValueError):
    """The change is refused; ``field`` names the input at fault (``valued_tags.ward``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def edit_contact(session: Session, contact: Contact, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` (any of ``EDITABLE``) to ``contact``; nothing is changed when one is wrong."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ContactEditError(unknown[0], f"cannot be changed here; the fields are {', '.join(EDITABLE)}")
    details = {key: _detail(key, changes[key]) for key in ("name", "language", "timezone") if key in changes}
    tags = _tags(contact, changes)
    fields = _fields(contact.fields or {}, changes["fields"]) if "fields" in changes else None
    for key, value in details.items():
        setattr(contact, key, value)
    if tags is not None:
        current = {t.name: t for t in contact.tags}
        contact.tags[:] = [current.get(name) or ContactTag(name=name) for name in sorted(tags)]
        for tag in contact.tags:
            tag.value = tags[tag.name]
    if fields is not None:
        contact.fields = fields
    session.flush()


def _detail(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ContactEditError(key, f"must be text or null, got {type(value).__name__}")
    value = value.strip()
    if key == "name" and len(value) > MAX_NAME:
        raise ContactEditError(key, f"must be at most {MAX_NAME} characters, got {len(value)}")
    if key == "language":
        value = value.lower()
        if len(value) > 16 or not LANGUAGE.match(value):
            raise ContactEditError(key, f"{value!r} is not a language code such as en, hi or mr-in")
    if key == "timezone" and value not in zoneinfo.available_timezones():
        raise ContactEditError(key, f"{value!r} is not a timezone such as Asia/Kolkata")
    return value or None


def _tags(contact: Contact, changes: Mapping[str, Any]) -> dict[str, str | None] | None:
    """The contact's tags after the change (name -> value, None for a plain tag), or None if untouched."""
    if "tags" not in changes and "valued_tags" not in changes:
        return None
    result: dict[str, str | None] = {t.name: t.value for t in contact.tags}
    if "valued_tags" in changes:
        valued = changes["valued_tags"]
        if valued is None:  # merge-patch: null removes them all
            result = {name: value for name, value in result.items() if value is None}
        elif not isinstance(valued, dict):
            raise ContactEditError("valued_tags", 'must be an object of names and values, such as {"ward": "12"}')
        else:
            for raw_name, value in valued.items():
                name, tag_value = _valued(raw_name, value)
                if tag_value is not None:
                    result[name] = tag_value
                elif result.get(name) is not None:
                    del result[name]
    if "tags" in changes:
        plain = changes["tags"] if changes["tags"] is not None else []
        if not isinstance(plain, list) or not all(isinstance(t, str) for t in plain):
            raise ContactEditError("tags", "must be a list of tag names such as volunteer")
        result = {name: value for name, value in result.items() if value is not None}
        for i, text in enumerate(plain):
            try:
                name = normalize_tag_name(text)
            except ValueError as exc:
                raise ContactEditError(f"tags[{i}]", str(exc)) from None
            if result.get(name) is not None:
                raise ContactEditError(
                    f"tags[{i}]", f"{name!r} is a valued tag ({name}={result[name]}); a tag has a value or none"
                )
            result[name] = None
    if len(result) > MAX_TAGS:
        raise ContactEditError("tags", f"a contact may have at most {MAX_TAGS} tags, this would give {len(result)}")
    return result


def _valued(raw_name: str, value: Any) -> tuple[str, str | None]:
    where = f"valued_tags.{raw_name}"
    try:
        name = normalize_tag_name(raw_name)
    except ValueError as exc:
        raise ContactEditError(where, str(exc)) from None
    if value is None:
        return name, None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ContactEditError(where, "must be text (or a number), or null to remove it")
    try:
        return name, parse_tag(f"{name}={value}").value
    except ValueError as exc:
        raise ContactEditError(where, str(exc)) from None


def _fields(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    if patch is None:  # merge-patch: null removes them all
        return {}
    if not isinstance(patch, dict):
        raise ContactEditError("fields", 'must be an object of names and values, such as {"age": 34}')
    result = dict(current)
    for name, value in patch.items():
        where = f"fields.{name}"
        if not FIELD_NAME.match(name):
            raise ContactEditError(
                where, "a field name has letters, digits and '_' (64 at most), not starting with a digit"
            )
        if value is None:
            result.pop(name, None)
        elif isinstance(value, str) and len(value) > MAX_FIELD_TEXT:
            raise ContactEditError(where, f"must be at most {MAX_FIELD_TEXT} characters, got {len(value)}")
        elif not isinstance(value, str | int | float | bool):
            raise ContactEditError(where, "must be text, a number, true or false, or null to remove it")
        else:
            result[name] = value
    if len(result) > MAX_FIELDS:
        raise ContactEditError(
            "fields", f"a contact may have at most {MAX_FIELDS} fields, this would give {len(result)}"
        )
    return result


def history_tables() -> list[Table]:
    """Every table that records something that happened to a contact (all but its tags).

    Found from the foreign keys, so a table added later (in any package) counts too.
    """
    contacts = Contact.__table__
    return [
        table
        for table in Base.metadata.sorted_tables
        if table is not ContactTag.__table__ and any(fk.column.table is contacts for fk in table.foreign_keys)
    ]


def has_history(session: Session, contact_id: int) -> bool:
    """Whether anything ever happened with the contact: a message, a call, a campaign, a consent entry..."""
    for table in history_tables():
        column = next(fk.parent for fk in table.foreign_keys if fk.column.table is Contact.__table__)
        if session.scalar(select(exists().where(column == contact_id))):
            return True
    return False


def delete_contact(session: Session, contact_id: int) -> None:
    """Delete a contact that has no history (``has_history``); its tags go with it."""
    if has_history(session, contact_id):
        raise ContactEditError(
            "contact", f"contact {contact_id} has history (messages, campaigns or consent); erase it instead"
        )
    session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id))
    session.execute(delete(Contact).where(Contact.id == contact_id))
