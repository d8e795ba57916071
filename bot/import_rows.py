"""Turn the rows of an import file into contact rows, tag rows and rejects.

This runs in worker processes (phone parsing is CPU-bound), so it works on plain tuples
and keeps its per-process state in a ``RowParser`` built once per worker.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import zoneinfo
from collections.abc import Sequence
from itertools import repeat

from bot.contacts import Tag, normalize_tag_name, parse_tag
from bot.phones import InvalidPhone, PhoneParser
from bot.spreadsheet import FORMULA_STARTS

PHONE_HEADERS = ("phone", "phone_number", "number", "mobile", "msisdn", "whatsapp")
KNOWN_HEADERS = ("name", "language", "timezone", "tags", "valued_tags", "consent")
CONSENT_VALUES = {"": None, "unknown": None, "opted_in": "opted_in", "opted_out": "opted_out"}
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
MAX_NAME = 200

# (line, phone, phone_kind, name, language, timezone_given, timezone_derived, consent, contact id)
ContactRow = tuple[int, str, str, str | None, str | None, str | None, str | None, str | None, int | None]
# (contact id, or the line when there are no ids; name, value)
TagRow = tuple[int, str, str | None]
# (line, reason, cells)
RejectRow = tuple[int, str, list[str]]


class HeaderError(ValueError):
    """The CSV header cannot be imported; nothing is read past it."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which column holds what, decided once from the header."""

    header: list[str]
    width: int
    phone: int
    known: dict[str, int]
    # Column index -> tag name for every other column (valued tags).
    valued: dict[int, str]

    @classmethod
    def from_header(cls, header: list[str]) -> Layout:
        """Read a header row; raise ``HeaderError`` naming the column at fault."""
        names = [h.strip().lstrip("\ufeff").strip().lower() for h in header]
        phone = [i for i, n in enumerate(names) if n in PHONE_HEADERS]
        if not phone:
            shown = ", ".join(repr(h) for h in header[:8]) or "nothing"
            raise HeaderError(
                f"line 1: the header needs a phone column (phone, number, mobile or msisdn); found {shown}. "
                "For a plain list of numbers use a .txt file"
            )
        if len(phone) > 1:
            raise HeaderError(f"line 1: more than one phone column: {', '.join(header[i] for i in phone)}")
        known: dict[str, int] = {}
        valued: dict[int, str] = {}
        seen: set[str] = set()
        for i, name in enumerate(names):
            if i == phone[0]:
                continue
            if not name:
                raise HeaderError(f"line 1: column {i + 1} has no name")
            if name in seen:
                raise HeaderError(f"line 1: column {header[i]!r} appears twice")
            seen.add(name)
            if name in KNOWN_HEADERS:
                known[name] = i
                continue
            try:
                valued[i] = normalize_tag_name(name)
            except ValueError as exc:
                raise HeaderError(f"line 1: column {header[i]!r} cannot become a valued tag: {exc}") from None
        return cls(header=list(header), width=len(names), phone=phone[0], known=known, valued=valued)


class RowParser:
    """Parses rows for one import: one instance per worker process."""

    def __init__(self, region: str, layout: Layout | None, extra_tags: list[Tag] | tuple[Tag, ...] = ()) -> None:
        self.phones = PhoneParser(region)
        self.layout = layout
        # The import's --tag list, one per name: a later valueless tag keeps an earlier
        # one's value, a later value replaces it.
        extras: dict[str, Tag] = {}
        for tag in extra_tags:
            earlier = extras.get(tag.name)
            extras[tag.name] = tag if earlier is None or tag.value is not None else earlier
        self.extra_tags = list(extras.values())
        self._tags: dict[str, tuple[str, str | None] | str] = {}

    def parse_chunk(
        self, rows: list[tuple[int, list[str]]], ids: Sequence[int] | None = None
    ) -> tuple[list[ContactRow], list[TagRow], list[RejectRow]]:
        """Parse ``(line, cells)`` pairs; every row ends up a contact or a reject.

        With ``ids`` (one per row, drawn ahead), a contact row carries its id and its
        tag rows are keyed by it; else tag rows are keyed by line.
        """
        good: list[ContactRow] = []
        tags: list[TagRow] = []
        rejects: list[RejectRow] = []
        parse_row = self._row
        extras = [(t.name, t.value) for t in self.extra_tags]
        pairs = zip(rows, ids, strict=True) if ids is not None else zip(rows, repeat(None))
        for (line, cells), contact_id in pairs:
            try:
                contact, row_tags = parse_row(line, cells, contact_id)
            except RowError as exc:
                rejects.append((line, str(exc), cells))
                continue
            good.append(contact)
            key = line if contact_id is None else contact_id
            if row_tags:
                tags.extend([(key, name, value) for name, value in row_tags.items()])
            # Each --tag goes on the rows that do not set that tag themselves.
            for name, value in extras:
                if name not in row_tags:
                    tags.append((key, name, value))
        return good, tags, rejects

    def _row(self, line: int, cells: list[str], contact_id: int | None) -> tuple[ContactRow, dict[str, str | None]]:
        """One row as a contact and its tags (name -> value); raise ``RowError`` to reject it."""
        joined = "\x1f".join(cells)
        if not joined.strip(" \t\x1f"):
            raise RowError("empty line")
        if _BAD_BYTES.search(joined):
            bad = next(c for c in cells if _BAD_BYTES.search(c))
            raise RowError(f"bad encoding: {_show_bad(bad)!r} is not valid text in this file's encoding")
        if "'" in joined:
            # Undo the apostrophe that our own exports put before formula-like text.
            cells = [c[1:] if c[:1] == "'" and c[1:2] in FORMULA_STARTS else c for c in cells]
        layout = self.layout
        if layout is None:  # a .txt list: one number per line
            return self._contact(line, cells[0].strip(), {}, contact_id), {}
        width = layout.width
        if len(cells) != width:
            if len(cells) > width:
                raise RowError(f"has {len(cells)} cells but the header has {width}")
            cells = cells + [""] * (width - len(cells))
        get = {name: cells[i].strip() for name, i in layout.known.items()}
        tags: dict[str, str | None] = {}
        listed = get.get("tags")
        if listed:
            for text in _split_list(listed):
                name, value = self._tag(text, "tags")
                tags[name] = value
        listed = get.get("valued_tags")
        if listed:
            for text in _split_list(listed):
                name, value = self._tag(text, "valued_tags")
                if value is None:
                    raise RowError(f"valued_tags: {text!r} needs name=value")
                tags[name] = value
        for i, name in layout.valued.items():
            value = cells[i].strip()
            if value:
                if len(value) > 255:
                    raise RowError(f"{name}: value is longer than 255 characters")
                tags[name] = value
        return self._contact(line, cells[layout.phone].strip(), get, contact_id), tags

    def _tag(self, text: str, column: str) -> tuple[str, str | None]:
        """``parse_tag`` remembered by text: a file repeats the same few tags on every row."""
        known = self._tags.get(text)
        if known is None:
            try:
                tag = parse_tag(text)
                known = (tag.name, tag.value)
            except ValueError as exc:
                known = str(exc)
            if len(self._tags) < 10_000:
                self._tags[text] = known
        if isinstance(known, str):
            raise RowError(f"{column}: {known}")
        return known

    def _contact(self, line: int, raw_phone: str, get: dict[str, str], contact_id: int | None) -> ContactRow:
        if not raw_phone:
            raise RowError("empty phone")
        try:
            phone = self.phones.parse(raw_phone)
        except InvalidPhone as exc:
            raise RowError(exc.reason) from None
        name = get.get("name") or None
        if name and len(name) > MAX_NAME:
            raise RowError(f"name: longer than {MAX_NAME} characters")
        language = (get.get("language") or "").lower() or None
        if language and not LANGUAGE.match(language):
            raise RowError(f"language: {language!r} is not a language code such as en, hi or mr")
        zone = get.get("timezone") or None
        if zone and zone not in _zones():
            raise RowError(f"timezone: {zone!r} is not a timezone such as Asia/Kolkata")
        consent_text = get.get("consent")
        consent = None
        if consent_text:
            consent_text = consent_text.lower()
            if consent_text not in CONSENT_VALUES:
                raise RowError(f"consent: {consent_text!r} must be opted_in, opted_out or empty")
            consent = CONSENT_VALUES[consent_text]
        return (line, phone.e164, phone.kind, name, language, zone, phone.timezone, consent, contact_id)


class RowError(ValueError):
    """This row is rejected; the message is the reason shown to the user."""


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


# Undecodable bytes arrive as lone surrogates (the reader uses surrogateescape).
_BAD_BYTES = re.compile("[\udc80-\udcff]")


def _show_bad(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def printable(cells: list[str]) -> list[str]:
    r"""Cells as text that can be written back as UTF-8 (bad bytes shown as \xNN)."""
    return [_show_bad(c) if _BAD_BYTES.search(c) else c for c in cells]


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
