"""Writing many rows at once: ``COPY`` and ``unnest`` on PostgreSQL, executemany elsewhere.

A batch job stores a few hundred rows a second (sessions, messages, funnel steps, status
events) and updates as many. Through SQLAlchemy's multi-row INSERT or a statement per
row, psycopg spends more CPU on each row (converting a long statement's text, binding
every parameter) than the rest of the send. Here, on PostgreSQL:

- ``copy_rows`` writes rows with ``COPY ... FROM STDIN``;
- ``insert_ids`` takes the new ids from the table's sequence first, then COPYs the rows
  with them (so the caller gets the ids back in the rows' order);
- ``Rows`` is a ``FROM`` of per-row values: ``unnest`` of one array per column, so one
  ``UPDATE ... FROM`` updates every row;
- ``one_of`` is ``IN`` as ``= ANY(array)``: one statement text whatever the number of values.

Arrays of integers (ids, mostly) and of strings go as the text of an array literal cast
in SQL (``CAST('{1,2,3}' AS BIGINT[])``): psycopg adapts a Python list element by element,
which cost more than the rest of the statement.

Elsewhere (SQLite) the same calls run SQLAlchemy's executemany. Values go through each
column's own bind processing (aware-UTC datetimes, JSON), and a column left out gets its
Python-side default, as SQLAlchemy's ``insert()`` would give it.
"""

from __future__ import annotations

import functools
import json
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Column, String, Table, and_, any_, bindparam, cast, func, insert, literal, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement, TextClause
from sqlalchemy.types import Integer, TypeEngine


def postgresql(db: Session) -> bool:
    """True when ``db`` talks to PostgreSQL."""
    return db.get_bind().dialect.name == "postgresql"


def one_of(db: Session, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``.

    An IN list is a placeholder per value: a statement whose text changes with the
    number of values, which psycopg parses again each time (its cache keeps short texts
    only). One array parameter keeps the text the same.
    """
    values = list(values)
    if postgresql(db):
        if isinstance(column.type, Integer):
            return column == any_(cast(literal(int_array(values), String()), ARRAY(column.type)))
        return column == any_(literal(values, ARRAY(column.type)))
    return column.in_(values)


def any_of(column: ColumnElement[Any], name: str, postgresql: bool) -> ColumnElement[bool]:
    """``column IN :name`` for a statement built once and run many times (integer columns).

    Pass the values as ``ids(postgresql, values)``. Built once, a statement keeps its cache
    key and compiled form: SQLAlchemy then spends nothing on it but binding the values.
    """
    if not isinstance(column.type, Integer):
        raise TypeError(f"any_of takes integer columns (ids sent as array text), not {column}")
    if postgresql:
        return column == any_(cast(bindparam(name, type_=String()), ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def ids(postgresql: bool, values: Iterable[int]) -> Any:
    """The value of an ``any_of`` parameter."""
    return int_array(values) if postgresql else list(values)


def int_array(values: Iterable[int | None]) -> str:
    """PostgreSQL's text of an array of integers (``{1,2,NULL}``)."""
    return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"


def text_array(values: Iterable[str | None]) -> str:
    """PostgreSQL's text of an array of strings: quoted, backslashes and quotes escaped, NULL bare."""
    return "{" + ",".join("NULL" if v is None else _quoted(str(v)) for v in values) + "}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def copy_rows(db: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``, in ``db``'s transaction."""
    if not rows:
        return
    if postgresql(db):
        _copy(db, table, rows)
    else:
        db.execute(insert(table), list(rows))


def insert_ids(
    db: Session, table: Table, rows: Sequence[Mapping[str, Any]], ids: Sequence[int] | None = None
) -> list[int]:
    """Insert ``rows`` into ``table``; return their new ids, in the rows' order.

    ``ids``: the rows' ids, drawn before with ``draw_ids`` (PostgreSQL); else drawn here.
    """
    if not rows:
        return []
    (key,) = table.primary_key.columns
    if ids is None:
        drawn = draw_ids(db, [(table, len(rows))])
        if drawn is None:  # SQLite numbers the rows as it inserts them
            stmt = insert(table).returning(key, sort_by_parameter_order=True)
            return list(db.scalars(stmt, list(rows)))
        (ids,) = drawn
    _copy(db, table, [{**row, key.name: rid} for row, rid in zip(rows, ids, strict=True)])
    return list(ids)


def draw_ids(db: Session, wanted: Sequence[tuple[Table, int]]) -> list[list[int]] | None:
    """On PostgreSQL, ``n`` new ids of each ``(table, n)`` from its sequence, in one statement.

    Ascending, as one multi-row INSERT would number them; each sequence looked up once.
    None elsewhere (SQLite numbers rows as it inserts them).
    """
    if not postgresql(db):
        return None
    params: dict[str, Any] = {}
    for i, (table, n) in enumerate(wanted):
        (key,) = table.primary_key.columns
        params |= {f"t{i}": table.name, f"k{i}": key.name, f"n{i}": n}
    row = db.execute(_draw(len(wanted)), params).one()
    return [sorted(drawn) for drawn in row]


@functools.cache
def _draw(tables: int) -> TextClause:
    arrays = ", ".join(f"array(SELECT nextval(q.s{i}) FROM generate_series(1, :n{i}))" for i in range(tables))
    sequences = ", ".join(f"pg_get_serial_sequence(:t{i}, :k{i})::regclass AS s{i}" for i in range(tables))
    return text(f"SELECT {arrays} FROM (SELECT {sequences}) AS q")


def _copy(db: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    conn = db.connection()
    dialect = conn.dialect
    given = list(rows[0])
    defaults = [c for c in table.columns if c.name not in given and _python_default(c)]
    columns = [table.c[name] for name in given] + defaults
    # Column by column: each value through its column's processor, once per object (rows
    # share objects: the batch's moment in every row's times, one list of a template's
    # buttons, one status's details). A default is computed for each row, as an INSERT would.
    values = [[row[name] for row in rows] for name in given] + [[_default_value(c) for _ in rows] for c in defaults]
    for i, column in enumerate(columns):
        process = _processor(column, dialect)
        if process is not None:
            values[i] = _once_per_object(values[i], process)
    quote = dialect.identifier_preparer
    sql = f"COPY {quote.format_table(table)} ({', '.join(quote.quote(c.name) for c in columns)}) FROM STDIN"
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(sql) as copy:
        for row in zip(*values, strict=True):
            copy.write_row(row)


def _processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of ``column`` goes into COPY: its bind processor, JSON as its text.

    psycopg's JSON adapter would serialize while writing each row, for every row;
    serialized here (once per object), a COPY's text format takes the string as it is.
    """
    if isinstance(column.type, JSON):
        dumps = getattr(dialect, "_json_serializer", None) or json.dumps
        none_as_null = column.type.none_as_null
        return lambda v: None if v is None and none_as_null else dumps(v)
    return column.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-any-return]


def _once_per_object(values: list[Any], process: Callable[[Any], Any]) -> list[Any]:
    """``[process(v) for v in values]``, calling ``process`` once per distinct object."""
    done: dict[int, Any] = {}
    out = []
    for value in values:  # the objects stay alive in ``values``: no id is reused meanwhile
        key = id(value)
        if key in done:
            out.append(done[key])
        else:
            out.append(done.setdefault(key, process(value)))
    return out


def _python_default(column: Column[Any]) -> bool:
    default = column.default
    if default is None:
        return False
    if not (default.is_scalar or default.is_callable):
        raise ValueError(f"{column.table.name}.{column.name}: only scalar or callable defaults can be copied")
    return True


def _default_value(column: Column[Any]) -> Any:
    default: Any = column.default
    # SQLAlchemy wraps a callable default to take the execution context; ours ignore it.
    return default.arg(None) if default.is_callable else default.arg


class Rows:
    """Per-row values to join in one statement: ``src.c.<name>`` in the statement, rows at execution.

    On PostgreSQL ``src.c`` are the columns of ``unnest(:a, :b, ...) AS name(a, b, ...)``
    (one array per column) and ``execute`` runs the statement once; elsewhere they are
    bound parameters and ``execute`` runs it once per row::

        src = Rows(db, "u", mid=BigInteger(), st=String())
        stmt = update(M).where(src.match(M.c.id, "mid")).values(status=src.c.st)
        src.execute(db, stmt, [{"mid": 1, "st": "sent"}, ...])
    """

    def __init__(self, db: Session | bool, name: str, **columns: TypeEngine[Any]) -> None:
        """``db``: the session, or whether the statement is for PostgreSQL (a statement built once)."""
        self.columns = columns
        self.unnest = db if isinstance(db, bool) else postgresql(db)
        # Columns sent as the text of an array (see ``int_array`` and ``text_array``).
        self.texts = {
            key: int_array if isinstance(type_, Integer) else text_array
            for key, type_ in columns.items()
            if isinstance(type_, Integer | String)
        }
        if self.unnest:
            self.arrays = {
                key: cast(bindparam(key, type_=String()), ARRAY(type_))
                if key in self.texts
                else bindparam(key, type_=ARRAY(type_))
                for key, type_ in columns.items()
            }
            derived = func.unnest(*self.arrays.values()).table_valued(*columns).render_derived(name=name)
            self.c = types.SimpleNamespace(**{key: derived.c[key] for key in columns})
        else:
            self.c = types.SimpleNamespace(**{key: bindparam(key, type_=t) for key, t in columns.items()})

    def execute(self, db: Session, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run ``stmt`` (which uses ``self.c``) for ``rows``."""
        if not rows:
            return
        if self.unnest:
            db.execute(stmt, self.arrays_of(rows))
        else:
            db.execute(stmt, list(rows))

    def arrays_of(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """PostgreSQL: the parameters of one execution for ``rows`` (an array per column)."""
        return {
            key: self.texts[key](row[key] for row in rows) if key in self.texts else [row[key] for row in rows]
            for key in self.columns
        }

    def match(self, column: ColumnElement[Any], key: str) -> ColumnElement[bool]:
        """``column = <key>``: the statement's rows joined with these by a key (an id).

        On PostgreSQL also ``column = ANY(<the key's array>)``. Joined on the key alone, a
        planner whose statistics are stale (a table grown since its last ANALYZE, as in a
        campaign's first minutes) hashed the whole table to find a few dozen rows; with the
        array it looks them up in the column's index.
        """
        cond = column == self.col(key)
        if self.unnest:
            cond = and_(cond, column == any_(self.arrays[key]))
        return cond

    def col(self, key: str) -> ColumnElement[Any]:
        """The column ``key`` (typed, for mypy)."""
        return getattr(self.c, key)  # type: ignore[no-any-return]
