"""Staging tables for a contact import: parsed rows in, duplicates and rejects out.

Parsed rows go into temporary tables (PostgreSQL: COPY; SQLite: executemany). Every
batch of ~100,000 rows is then checked for numbers seen before in the file and handed to
``bot.import_upsert``, which writes contacts, tags and consent entries with a handful of
set-based statements — all inside the import's one transaction, so nothing is visible to
anyone else until the final commit, and a crash at any point leaves the database as it was.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.import_rows import ContactRow, RejectRow, TagRow, printable
from bot.import_upsert import insert_new, may_skip_key_checks, upsert

ROW_COLUMNS = ("line", "phone", "phone_kind", "name", "language", "tz_given", "tz_derived", "consent")
TABLES = (
    ("import_batch", ROW_COLUMNS),
    ("import_batch_tags", ("line", "name", "value")),
    ("import_rejects", ("line", "reason", "cells")),
)
_ROW_DDL = """phone VARCHAR(20) NOT NULL, phone_kind VARCHAR(24), name VARCHAR(200), language VARCHAR(16),
    tz_given VARCHAR(64), tz_derived VARCHAR(64), consent VARCHAR(16)"""
_CREATE = (
    # PostgreSQL: each staged row takes its contact id from the contacts sequence as COPY
    # writes it, so new contacts and their tags need no id lookup; rows found to exist
    # get the existing contact's id instead (``existing``). SQLite: see bot.import_upsert.
    {
        "postgresql": f"""CREATE TEMPORARY TABLE import_batch (line INTEGER NOT NULL, {_ROW_DDL},
            id BIGINT NOT NULL DEFAULT nextval('{{sequence}}'), existing BOOLEAN NOT NULL DEFAULT false)""",
        "sqlite": f"CREATE TEMPORARY TABLE import_batch (line INTEGER PRIMARY KEY, {_ROW_DDL})",
    },
    "CREATE TEMPORARY TABLE import_batch_tags (line INTEGER NOT NULL, name VARCHAR(64) NOT NULL, value VARCHAR(255))",
    # Every number taken so far, with its line: later lines with it are duplicates.
    "CREATE TEMPORARY TABLE import_seen (phone VARCHAR(20) PRIMARY KEY, line INTEGER NOT NULL)",
    # SQLite: the contact id of each number of the current batch.
    {"sqlite": "CREATE TEMPORARY TABLE import_ids (phone VARCHAR(20) PRIMARY KEY, id BIGINT NOT NULL)"},
    # cells is NULL for duplicates: their cells are read back from the file at the end.
    "CREATE TEMPORARY TABLE import_rejects (line INTEGER NOT NULL, reason TEXT NOT NULL, cells TEXT)",
)
_TEMP_TABLES = ("import_batch", "import_batch_tags", "import_seen", "import_ids", "import_rejects")
OPTIMISTIC_BATCHES = 60
# Per table: COPY data (PostgreSQL) or a list of tuples (SQLite); then the number of rows.
Batch = tuple[Any, Any, Any, int]


def encode_batch(dialect: str, rows: list[ContactRow], tags: list[TagRow], rejects: list[RejectRow]) -> Batch:
    """Prepare one parsed chunk for ``Staging.add`` (runs in the parsing workers)."""
    # Undecodable bytes become \xNN text here: the database and the rejects file need UTF-8.
    reject_rows = [(line, reason, json.dumps(printable(cells), ensure_ascii=False)) for line, reason, cells in rejects]
    if dialect != "postgresql":
        return rows, tags, reject_rows, len(rows)
    return _copy_csv(rows), _copy_csv(tags), _copy_csv(reject_rows), len(rows)


def _copy_csv(rows: Iterable[tuple[object, ...]]) -> bytes:
    """Rows for ``COPY ... (FORMAT csv)``: None becomes an unquoted empty field (NULL)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


class Staging:
    """The temporary tables of one import, on one connection (inside its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.imported = 0
        self.updated = 0
        self.staged = 0
        self.analyzed = False
        # Batches to try as all new (PostgreSQL). Each try is a savepoint, and a
        # transaction with more than 64 subtransactions slows every other session's
        # snapshots, hence the cap; larger imports go on with the general upsert.
        self.optimistic = OPTIMISTIC_BATCHES if self.dialect == "postgresql" else 0
        self.skip_key_checks = may_skip_key_checks(conn)
        self.drop_tables(conn)
        sequence = ""
        if self.dialect == "postgresql":
            # DDL takes no bind parameters: the name goes in as a quoted literal.
            found = conn.exec_driver_sql("SELECT pg_get_serial_sequence('contacts', 'id')").scalar_one()
            sequence = found.replace("'", "''")
        for ddl in _CREATE:
            if isinstance(ddl, dict):
                ddl = ddl.get(self.dialect)
                if ddl is None:
                    continue
            conn.exec_driver_sql(ddl.replace("{sequence}", sequence))

    def add(self, batch: Batch) -> None:
        """Stage one chunk, as ``encode_batch`` prepared it."""
        dbapi = self.conn.connection.dbapi_connection
        *data_by_table, rows = batch
        self.staged += rows
        for (table, columns), data in zip(TABLES, data_by_table, strict=True):
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

    def apply(self) -> None:
        """Apply the staged batch to the real tables, then empty it."""
        if not self.staged:
            return
        if self.dialect == "postgresql" and not self.analyzed:
            # Temporary tables are never auto-analysed; without statistics the planner
            # picks nested loops for the large joins. Batches look alike, so the first
            # one's statistics serve for the rest.
            self.conn.exec_driver_sql("ANALYZE import_batch")
            self.conn.exec_driver_sql("ANALYZE import_batch_tags")
            self.analyzed = True
        self._apply()
        self.staged = 0
        if self.dialect == "postgresql":
            self.conn.exec_driver_sql("TRUNCATE import_batch, import_batch_tags")
        else:
            for table in ("import_batch", "import_batch_tags", "import_ids"):
                self.conn.exec_driver_sql(f"DELETE FROM {table}")

    def _apply(self) -> None:
        if self.optimistic:
            self.optimistic -= 1
            failed = insert_new(self.conn, self.staged, self.skip_key_checks)
            if failed is None:
                self.imported += self.staged
                return
            if failed != "import_seen":
                # Numbers that exist already: this list overlaps the contacts, so the
                # tries would keep failing; the general upsert takes the rest.
                self.optimistic = 0
        unique = self._drop_duplicates()
        imported, updated = upsert(self.conn, unique)
        self.imported += imported
        self.updated += updated

    def _drop_duplicates(self) -> int:
        """Reject the rows whose number came earlier in the file; return the rows left.

        One insert into ``import_seen`` takes each number's first line; when it took
        every staged row (the usual case) there is nothing more to do.
        """
        run = self.conn.execute
        taken = run(
            text(
                """INSERT INTO import_seen (phone, line)
                SELECT phone, MIN(line) FROM import_batch WHERE 1 = 1 GROUP BY phone
                ON CONFLICT (phone) DO NOTHING"""
            )
        ).rowcount
        if taken == self.staged:
            return taken
        # A number seen before (earlier in this batch or in an earlier one) is a reject
        # that names the line where it first appeared.
        dropped = """FROM import_batch b JOIN import_seen s ON s.phone = b.phone WHERE s.line <> b.line"""
        run(
            text(
                "INSERT INTO import_rejects (line, reason, cells) "
                f"SELECT b.line, 'duplicate of line ' || CAST(s.line AS VARCHAR(12)), NULL {dropped}"
            )
        )
        run(
            text(
                "DELETE FROM import_batch WHERE EXISTS (SELECT 1 FROM import_seen s "
                "WHERE s.phone = import_batch.phone AND s.line <> import_batch.line)"
            )
        )
        return taken

    def rejects(self) -> Iterator[tuple[int, str, list[str] | None]]:
        """Rejected rows in file order (cells None: read them from the file)."""
        result = self.conn.exec_driver_sql("SELECT line, reason, cells FROM import_rejects ORDER BY line")
        for line, reason, cells in result:
            yield line, reason, json.loads(cells) if cells is not None else None

    def reject_count(self) -> int:
        """How many rows were rejected."""
        return self.conn.exec_driver_sql("SELECT COUNT(*) FROM import_rejects").scalar_one()

    @staticmethod
    def drop_tables(conn: Connection) -> None:
        """Drop the temporary tables (before the connection goes back to the pool)."""
        for table in _TEMP_TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
