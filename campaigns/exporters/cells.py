"""What the cells of an export hold: each rule in Python, and beside it its twin in SQL.

The funnel CSV is made by Python on SQLite and by PostgreSQL itself on PostgreSQL
(``campaigns.exporters.funnel_copy``), so every rule a cell follows is written twice,
here, side by side; tests/campaigns/test_export.py exports the same tricky rows on both
databases and compares them with the same bytes, so that the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import ColumnElement, String, Text, case, cast, func, literal, literal_column, null, type_coerce

from bot.spreadsheet import FORMULA_STARTS, formula_safe

# First characters that make a spreadsheet run a cell (bot.spreadsheet.FORMULA_STARTS),
# tested inline by the Python exporter: a million rows make formula_safe's call its biggest cost.
RISKY = frozenset(FORMULA_STARTS)

# An integer as Python's json writes it (so str() of what json.loads reads is the same text).
PLAIN_INT = "^(0|-?[1-9][0-9]*)$"


def iso(value: dt.datetime | None) -> str:
    """``2026-11-23T06:41:00Z`` (UTC, seconds), or empty."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else ""


def iso_sql(column: ColumnElement[Any], dialect: str) -> ColumnElement[str | None]:
    """The text of :func:`iso` made by the database (NULL for NULL).

    A million-row export formats up to ten times a row: in Python that is ~1.5 us each
    (``strftime`` after the UTC conversion of every value read), in the database ~0.25 us,
    on the database's core rather than the exporter's.
    """
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    # SQLite holds UTC times as text ("2026-11-23 06:41:00.123456").
    return func.strftime("%Y-%m-%dT%H:%M:%SZ", column)


def answer_cell(value: Any) -> str:
    """An answer as one cell: text as it is, anything structured as compact JSON."""
    if value is None:
        return ""
    if value.__class__ is str:
        return "'" + value if value and value[0] in RISKY else value
    if isinstance(value, bool | int | float):
        return str(value)
    return formula_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def formula_safe_sql(column: ColumnElement[Any]) -> ColumnElement[str | None]:
    """The text of a cell that a spreadsheet shows instead of running, made by PostgreSQL.

    NULL for NULL and for the empty text: COPY writes NULL as an empty cell but quotes an
    empty text (``""``), where Python's csv writes nothing.
    """
    text = type_coerce(column, String)
    return case(
        (func.left(text, 1).in_(FORMULA_STARTS), literal("'", String) + text),
        else_=func.nullif(text, ""),
    )


def answer_parts_sql(value: ColumnElement[Any]) -> tuple[ColumnElement[str], ColumnElement[str | None]]:
    """What :func:`answer_sql` needs of a JSON answer: its kind and its scalar's text, read once.

    The kind is ``json_typeof``'s, or ``nul`` for text holding a NUL character, which
    PostgreSQL's text cannot hold (``#>>`` would fail the whole query on it).
    """
    nul = func.strpos(cast(value, Text), "\\u0000") > 0
    kind = case((nul, "nul"), else_=func.json_typeof(value))
    scalar = case((nul, null()), else_=type_coerce(value.op("#>>")(literal_column("'{}'")), Text))
    return kind, scalar


def answer_sql(kind: ColumnElement[str], scalar: ColumnElement[str | None]) -> tuple[ColumnElement[Any], ...]:
    """:func:`answer_cell` made by PostgreSQL from :func:`answer_parts_sql`, and whether it could make it.

    PostgreSQL makes the cells of text, of JSON null and of integers as Python writes them.
    The others (decimals, true and false, lists, objects, text holding a NUL character) are
    left to :func:`answer_cell`.
    """
    cell = case(
        (kind == "string", formula_safe_sql(scalar)),
        (kind == "number", scalar),
        else_=null(),
    )
    plain = case(
        (kind.in_(["string", "null"]), True),
        (kind == "number", scalar.op("~")(PLAIN_INT)),
        else_=False,
    )
    return cell, plain
