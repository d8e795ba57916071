"""Pagination shared by every list of the API: ``?limit=`` and ``?cursor=``, answered with ``next_cursor``.

A list reads ``limit + 1`` rows in its index order, starting after the cursor; the extra
row only says whether there is a next page, whose cursor is the last row shown. Keyset
pagination stays as fast on the millionth contact as on the first (no OFFSET).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import request
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from web.context import db_session
from web.errors import BadInput

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def limit_arg(default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """The page size asked for: 1 to ``maximum``."""
    raw = request.args.get("limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        raise BadInput(f"must be a whole number from 1 to {maximum}, got {raw!r}", field="limit")
    return limit


def cursor_arg() -> str | None:
    """The ``cursor`` of the page asked for (the ``next_cursor`` of the one before), if any."""
    raw = request.args.get("cursor")
    return raw if raw else None


def id_cursor() -> int | None:
    """A cursor that is a row id (lists ordered by id)."""
    raw = cursor_arg()
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BadInput(f"not a position in this list, got {raw!r}; pass next_cursor as it came", field="cursor")
    return int(raw)


def page(rows: Sequence[T], limit: int, key: Callable[[T], Any]) -> tuple[list[T], str | None]:
    """The rows to show (at most ``limit``) and the next page's cursor (None on the last page)."""
    shown = list(rows[:limit])
    return shown, (str(key(shown[-1])) if len(rows) > limit and shown else None)


def keyset(
    stmt: Select[Any], column: InstrumentedAttribute[Any], *, descending: bool, maximum: int = MAX_LIMIT
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` in ``column`` order (a unique whole number: an id, a version), after ``?cursor=``."""
    limit = limit_arg(maximum=maximum)
    if (after := id_cursor()) is not None:
        stmt = stmt.where(column < after if descending else column > after)
    stmt = stmt.order_by(column.desc() if descending else column).limit(limit + 1)
    return page(db_session().scalars(stmt).all(), limit, lambda row: getattr(row, column.key))
