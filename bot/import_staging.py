"""Staging tables for a contact import, and the set-based SQL that applies them.

Rows go into temporary tables (PostgreSQL: COPY; SQLite: executemany) inside one
transaction; at the end a handful of INSERT ... SELECT statements de-duplicate, upsert the
contacts and their tags and append consent entries. Nothing is visible to anyone else
until the final commit, so a crash mid-file leaves the database as it was.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import JSON, bindparam, text
from sqlalchemy.engine import Connection

from bot.contacts import Tag
from bot.db import UTCDateTime, utcnow
from bot.import_rows import ContactRow, RejectRow, TagRow, printable

ROW_COLUMNS = ("line", "phone", "phone_kind", "name", "language", "tz_given", "tz_derived", "consent", "cells")

TABLES = (
    ("import_rows", ROW_COLUMNS),
    ("import_tags", ("line", "name", "value")),
    ("import_rejects", ("line", "reason", "cells")),
)
# Per table: COPY text (PostgreSQL) or a list of tuples (SQLite).
Batch = tuple[Any, Any, Any]


def encode_batch(dialect: str, rows: list[ContactRow], tags: list[TagRow], rejects: list[RejectRow]) -> Batch:
    """Prepare one parsed chunk for ``Staging.add`` (runs in the parsing workers)."""
    # Undecodable bytes become \\xNN text here: the database and the rejects file need UTF-8.
    reject_rows = [(line, reason, json.dumps(printable(cells), ensure_ascii=False)) for line, reason, cells in rejects]
    if dialect != "postgresql":
        return rows, tags, reject_rows
    return tuple(_copy_csv(data) for data in (rows, tags, reject_rows))


def _copy_csv(rows: Iterable[tuple[object, ...]]) -> bytes:
    """Rows for ``COPY ... (FORMAT csv)``: None becomes an unquoted empty field (NULL)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogateescape")


_CREATE = (
    """CREATE TEMPORARY TABLE import_rows (
        line INTEGER PRIMARY KEY, phone VARCHAR(20) NOT NULL, phone_kind VARCHAR(24),
        name VARCHAR(200), language VARCHAR(16), tz_given VARCHAR(64), tz_derived VARCHAR(64),
        consent VARCHAR(16), cells TEXT NOT NULL)""",
    "CREATE TEMPORARY TABLE import_tags (line INTEGER NOT NULL, name VARCHAR(64) NOT NULL, value VARCHAR(255))",
    "CREATE TEMPORARY TABLE import_rejects (line INTEGER NOT NULL, reason TEXT NOT NULL, cells TEXT NOT NULL)",
)


class Staging:
    """The temporary tables of one import, on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.drop_tables(conn)
        for ddl in _CREATE:
            conn.exec_driver_sql(ddl)

    def add(self, batch: Batch) -> None:
        """Stage one chunk, as ``encode_batch`` prepared it."""
        dbapi = self.conn.connection.dbapi_connection
        for (table, columns), data in zip(TABLES, batch, strict=True):
            if not data:
                continue
            if self.dialect == "postgresql":
                copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
                with dbapi.cursor() as cur, cur.copy(copy_sql) as copy:
                    copy.write(data)
            else:
                marks = ", ".join("?" for _ in columns)
                cur = dbapi.cursor()
                cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", data)
                cur.close()

    def apply(self, extra_tags: list[Tag]) -> tuple[int, int]:
        """Upsert the staged rows into the real tables; return (imported, updated)."""
        run = self.conn.execute
        self.conn.exec_driver_sql("CREATE INDEX import_rows_phone ON import_rows (phone, line)")
        if self.dialect == "postgresql":
            self.conn.exec_driver_sql("ANALYZE import_rows")
        # A number seen again further down the file is a reject that names the first line.
        run(
            text(
                """INSERT INTO import_rejects (line, reason, cells)
                SELECT r.line, 'duplicate of line ' || CAST(f.first AS VARCHAR(12)), r.cells
                FROM import_rows r JOIN (SELECT phone, MIN(line) AS first FROM import_rows GROUP BY phone) f
                  ON f.phone = r.phone AND r.line > f.first"""
            )
        )
        run(
            text(
                """DELETE FROM import_rows WHERE line IN (
                     SELECT r.line FROM import_rows r JOIN import_rows e ON e.phone = r.phone AND e.line < r.line)"""
            )
        )
        if self.dialect == "postgresql":
            # Temporary tables are never auto-analysed; without statistics the planner
            # picks nested loops for the million-row joins below.
            self.conn.exec_driver_sql("ANALYZE import_rows")
            self.conn.exec_driver_sql("ANALYZE import_tags")
        total = run(text("SELECT COUNT(*) FROM import_rows")).scalar_one()
        updated = run(text("SELECT COUNT(*) FROM import_rows r JOIN contacts c ON c.phone = r.phone")).scalar_one()
        now = bindparam("now", utcnow(), type_=UTCDateTime)
        run(
            text(
                """INSERT INTO contacts (phone, phone_kind, name, language, timezone, fields, consent,
                                         created_at, updated_at)
                SELECT phone, phone_kind, name, language, COALESCE(tz_given, tz_derived), :fields,
                       'unknown', :now, :now
                FROM import_rows WHERE 1 = 1
                ON CONFLICT (phone) DO UPDATE SET
                  name = COALESCE(excluded.name, contacts.name),
                  language = COALESCE(excluded.language, contacts.language),
                  timezone = COALESCE(
                    (SELECT tz_given FROM import_rows WHERE import_rows.phone = excluded.phone),
                    contacts.timezone, excluded.timezone),
                  updated_at = excluded.updated_at"""
            ).bindparams(now, bindparam("fields", {}, type_=JSON))
        )
        # The file's own tags, then each --tag for rows that did not set that tag.
        sources = [
            (
                "SELECT c.id, t.name, t.value FROM import_tags t JOIN import_rows r ON r.line = t.line "
                "JOIN contacts c ON c.phone = r.phone WHERE 1 = 1",
                {},
            )
        ]
        for tag in extra_tags:
            sources.append(
                (
                    "SELECT c.id, CAST(:name AS VARCHAR(64)), CAST(:value AS VARCHAR(255)) "
                    "FROM import_rows r JOIN contacts c ON c.phone = r.phone "
                    "WHERE NOT EXISTS (SELECT 1 FROM import_tags t "
                    "WHERE t.line = r.line AND t.name = CAST(:name AS VARCHAR(64)))",
                    {"name": tag.name, "value": tag.value},
                )
            )
        for source, params in sources:
            # A tag without a value never wipes the value a valued tag already has.
            run(
                text(
                    f"""INSERT INTO contact_tags (contact_id, name, value) {source}
                    ON CONFLICT (contact_id, name) DO UPDATE
                    SET value = COALESCE(excluded.value, contact_tags.value)"""
                ),
                params,
            )
        run(
            text(
                """INSERT INTO consent_events (contact_id, status, channel, source, note, created_at)
                SELECT c.id, r.consent, NULL, 'import', 'line ' || CAST(r.line AS VARCHAR(12)), :now
                FROM import_rows r JOIN contacts c ON c.phone = r.phone
                WHERE r.consent IS NOT NULL AND r.consent <> c.consent"""
            ).bindparams(now)
        )
        run(
            text(
                """UPDATE contacts SET consent = r.consent FROM import_rows r
                WHERE contacts.phone = r.phone AND r.consent IS NOT NULL AND contacts.consent <> r.consent"""
            )
        )
        return total - updated, updated

    def rejects(self) -> Iterator[tuple[int, str, list[str]]]:
        """Rejected rows in file order."""
        result = self.conn.exec_driver_sql("SELECT line, reason, cells FROM import_rejects ORDER BY line")
        for line, reason, cells in result:
            yield line, reason, json.loads(cells)

    def reject_count(self) -> int:
        """How many rows were rejected."""
        return self.conn.exec_driver_sql("SELECT COUNT(*) FROM import_rejects").scalar_one()

    @staticmethod
    def drop_tables(conn: Connection) -> None:
        """Drop the temporary tables (before the connection goes back to the pool)."""
        for table in ("import_rows", "import_tags", "import_rejects"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
