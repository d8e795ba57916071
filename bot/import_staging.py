"""Staging tables for a contact import: parsed rows in, duplicates and rejects out.

Parsed rows go into temporary tables (PostgreSQL: COPY; SQLite: executemany). Every
batch of ~100,000 rows is then checked for numbers seen before in the file and handed to
``bot.import_upsert``, which writes contacts, tags and consent entries with a handful of
set-based statements — all inside the import's one transaction, so nothing is visible to
anyone else until the final commit, and a crash at any point leaves the database as it was.

On PostgreSQL every row carries a contact id drawn ahead from the contacts sequence
(``ContactIds``, in the main process), so the workers write tag rows with their final
``contact_id``: when a batch turns out to be all new numbers, its tags are copied
straight into ``contact_tags``, with no staging table and no join.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.db import Database
from bot.import_rows import ContactRow, RejectRow, TagRow, printable
from bot.import_upsert import insert_new, may_skip_key_checks, upsert

ROW_COLUMNS = ("line", "phone", "phone_kind", "name", "language", "tz_given", "tz_derived", "consent", "id")
_ROW_DDL = """phone VARCHAR(20) NOT NULL, phone_kind VARCHAR(24), name VARCHAR(200), language VARCHAR(16),
    tz_given VARCHAR(64), tz_derived VARCHAR(64), consent VARCHAR(16)"""
_TAG_DDL = "name VARCHAR(64) NOT NULL, value VARCHAR(255)"
_CREATE = {
    # PostgreSQL: ``id`` is the id drawn for the row; a number found to exist takes the
    # existing contact's id instead, the drawn one kept in ``drawn`` (its tags' key).
    "postgresql": (
        f"""CREATE TEMPORARY TABLE import_batch (line INTEGER NOT NULL, {_ROW_DDL}, id BIGINT NOT NULL,
            drawn BIGINT, existing BOOLEAN NOT NULL DEFAULT false)""",
        f"CREATE TEMPORARY TABLE import_batch_tags (contact_id BIGINT NOT NULL, {_TAG_DDL})",
    ),
    "sqlite": (
        # (id: unused, SQLite draws no ids ahead)
        f"CREATE TEMPORARY TABLE import_batch (line INTEGER PRIMARY KEY, {_ROW_DDL}, id INTEGER)",
        f"CREATE TEMPORARY TABLE import_batch_tags (line INTEGER NOT NULL, {_TAG_DDL})",
        # The contact id of each number of the current batch.
        "CREATE TEMPORARY TABLE import_ids (phone VARCHAR(20) PRIMARY KEY, id BIGINT NOT NULL)",
    ),
}
_CREATE_BOTH = (
    # Every number taken so far, with its line: later lines with it are duplicates.
    "CREATE TEMPORARY TABLE import_seen (phone VARCHAR(20) PRIMARY KEY, line INTEGER NOT NULL)",
    # cells is NULL for duplicates: their cells are read back from the file at the end.
    "CREATE TEMPORARY TABLE import_rejects (line INTEGER NOT NULL, reason TEXT NOT NULL, cells TEXT)",
)
_TEMP_TABLES = ("import_batch", "import_batch_tags", "import_seen", "import_ids", "import_rejects")
_COPY = {
    "import_batch": f"COPY import_batch ({', '.join(ROW_COLUMNS)}) FROM STDIN (FORMAT csv)",
    "import_batch_tags": "COPY import_batch_tags (contact_id, name, value) FROM STDIN (FORMAT csv)",
    "contact_tags": "COPY contact_tags (contact_id, name, value) FROM STDIN (FORMAT csv)",
    "import_rejects": "COPY import_rejects (line, reason, cells) FROM STDIN (FORMAT csv)",
}
OPTIMISTIC_BATCHES = 60
# Rows, tags and rejects (PostgreSQL: COPY data; SQLite: lists of tuples), then how many rows.
Batch = tuple[Any, Any, Any, int]
# Contact ids for the rows of one piece: (first, count) when consecutive, else a list.
IdBlock = tuple[int, int] | list[int]


def encode_batch(dialect: str, rows: list[ContactRow], tags: list[TagRow], rejects: list[RejectRow]) -> Batch:
    """Prepare one parsed piece for ``Staging.add`` (runs in the parsing workers)."""
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


class ContactIds:
    """Draws contact ids from the contacts sequence ahead of the import (PostgreSQL).

    It has a connection of its own: ``nextval`` is not transactional, so ids drawn for
    numbers that turn out to exist (or for an import that fails) are simply never used,
    like any sequence gap.
    """

    def __init__(self, db: Database) -> None:
        self.conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.sequence = self.conn.exec_driver_sql("SELECT pg_get_serial_sequence('contacts', 'id')").scalar_one()

    def __call__(self, count: int) -> IdBlock:
        """``count`` new ids; nearly always consecutive, so sent as (first, count)."""
        if count == 0:
            return (0, 0)
        low, listed = self.conn.execute(
            text(
                """SELECT MIN(v), CASE WHEN MAX(v) - MIN(v) + 1 = COUNT(*) THEN NULL ELSE array_agg(v) END
                FROM (SELECT nextval(CAST(:sequence AS regclass)) AS v FROM generate_series(1, :count)) AS drawn"""
            ),
            {"sequence": self.sequence, "count": count},
        ).one()
        # Another session drew ids meanwhile: the list, then.
        return (low, count) if listed is None else list(listed)

    def close(self) -> None:
        """Give the connection back."""
        self.conn.close()


class Staging:
    """The temporary tables of one import, on one connection (inside its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.imported = 0
        self.updated = 0
        self.staged = 0
        self.analyzed: set[str] = set()
        # PostgreSQL: the batch's tag rows, copied at once where they belong when it is applied.
        self.tag_data: list[bytes] = []
        # Batches to try as all new (PostgreSQL). Each try is a savepoint, and a
        # transaction with more than 64 subtransactions slows every other session's
        # snapshots, hence the cap; larger imports go on with the general upsert.
        self.optimistic = OPTIMISTIC_BATCHES if self.dialect == "postgresql" else 0
        self.skip_key_checks = may_skip_key_checks(conn)
        self.drop_tables(conn)
        for ddl in (*_CREATE[self.dialect], *_CREATE_BOTH):
            conn.exec_driver_sql(ddl)

    def add(self, batch: Batch) -> None:
        """Stage one piece, as ``encode_batch`` prepared it."""
        rows, tags, rejects, count = batch
        self.staged += count
        if self.dialect == "postgresql":
            self.copy("import_batch", rows)
            self.copy("import_rejects", rejects)
            if tags:
                self.tag_data.append(tags)
            return
        cur = self.conn.connection.dbapi_connection.cursor()
        marks = ", ".join("?" for _ in ROW_COLUMNS)
        cur.executemany(f"INSERT INTO import_batch ({', '.join(ROW_COLUMNS)}) VALUES ({marks})", rows)
        cur.executemany("INSERT INTO import_batch_tags (line, name, value) VALUES (?, ?, ?)", tags)
        cur.executemany("INSERT INTO import_rejects (line, reason, cells) VALUES (?, ?, ?)", rejects)
        cur.close()

    def copy(self, table: str, *data: bytes) -> None:
        """COPY prepared CSV data into ``table`` (PostgreSQL)."""
        if not any(data):
            return
        with self.conn.connection.dbapi_connection.cursor() as cur, cur.copy(_COPY[table]) as copy:
            for chunk in data:
                copy.write(chunk)

    def apply(self) -> None:
        """Apply the staged batch to the real tables, then empty it."""
        if not self.staged:
            return
        self._analyze("import_batch")
        self._apply()
        self.staged = 0
        self.tag_data = []
        if self.dialect == "postgresql":
            self.conn.exec_driver_sql("TRUNCATE import_batch, import_batch_tags")
        else:
            for table in ("import_batch", "import_batch_tags", "import_ids"):
                self.conn.exec_driver_sql(f"DELETE FROM {table}")

    def _analyze(self, table: str) -> None:
        # Temporary tables are never auto-analysed; without statistics the planner picks
        # nested loops for the large joins. Batches look alike, so the first one's
        # statistics serve for the rest.
        if self.dialect == "postgresql" and table not in self.analyzed:
            self.conn.exec_driver_sql(f"ANALYZE {table}")
            self.analyzed.add(table)

    def _apply(self) -> None:
        if self.optimistic:
            self.optimistic -= 1
            failed = insert_new(self.conn, self.skip_key_checks, lambda: self.copy("contact_tags", *self.tag_data))
            if failed is None:
                self.imported += self.staged
                return
            if failed != "import_seen":
                # Numbers that exist already: this list overlaps the contacts, so the
                # tries would keep failing; the general upsert takes the rest.
                self.optimistic = 0
        if self.dialect == "postgresql":
            self.copy("import_batch_tags", *self.tag_data)
            self._analyze("import_batch_tags")
        unique = self._drop_duplicates()
        imported, updated = upsert(self.conn, unique)
        self.imported += imported
        self.updated += updated

    def _drop_duplicates(self) -> int:
        """Reject the rows whose number came earlier in the file; return the rows left.

        One insert into ``import_seen`` takes each number's first line; when it took
        every staged row there is nothing more to do.
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
        run(
            text(
                """INSERT INTO import_rejects (line, reason, cells)
                SELECT b.line, 'duplicate of line ' || CAST(s.line AS VARCHAR(12)), NULL
                FROM import_batch b JOIN import_seen s ON s.phone = b.phone WHERE s.line <> b.line"""
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
