"""Staging tables for a contact import, and the set-based SQL that applies them.

Parsed rows go into temporary tables (PostgreSQL: COPY; SQLite: executemany). Every
batch of ~100,000 rows is then applied with a handful of INSERT ... SELECT statements
that drop duplicates, upsert the contacts and their tags and append consent entries —
all inside the import's one transaction, so nothing is visible to anyone else until the
final commit, and a crash at any point leaves the database as it was.
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

ROW_COLUMNS = ("line", "phone", "phone_kind", "name", "language", "tz_given", "tz_derived", "consent")
TABLES = (
    ("import_batch", ROW_COLUMNS),
    ("import_batch_tags", ("line", "name", "value")),
    ("import_rejects", ("line", "reason", "cells")),
)
_CREATE = (
    """CREATE TEMPORARY TABLE import_batch (
        line INTEGER PRIMARY KEY, phone VARCHAR(20) NOT NULL, phone_kind VARCHAR(24),
        name VARCHAR(200), language VARCHAR(16), tz_given VARCHAR(64), tz_derived VARCHAR(64),
        consent VARCHAR(16))""",
    "CREATE TEMPORARY TABLE import_batch_tags (line INTEGER NOT NULL, name VARCHAR(64) NOT NULL, value VARCHAR(255))",
    # Every number taken so far, with its line: later lines with it are duplicates.
    "CREATE TEMPORARY TABLE import_seen (phone VARCHAR(20) PRIMARY KEY, line INTEGER NOT NULL)",
    # The contact id of each number of the current batch.
    "CREATE TEMPORARY TABLE import_ids (phone VARCHAR(20) PRIMARY KEY, id BIGINT NOT NULL)",
    # cells is NULL for duplicates: their cells are read back from the file at the end.
    "CREATE TEMPORARY TABLE import_rejects (line INTEGER NOT NULL, reason TEXT NOT NULL, cells TEXT)",
)
_TEMP_TABLES = ("import_batch", "import_batch_tags", "import_seen", "import_ids", "import_rejects")
# Per table: COPY data (PostgreSQL) or a list of tuples (SQLite).
Batch = tuple[Any, Any, Any]


def encode_batch(dialect: str, rows: list[ContactRow], tags: list[TagRow], rejects: list[RejectRow]) -> Batch:
    """Prepare one parsed chunk for ``Staging.add`` (runs in the parsing workers)."""
    # Undecodable bytes become \xNN text here: the database and the rejects file need UTF-8.
    reject_rows = [(line, reason, json.dumps(printable(cells), ensure_ascii=False)) for line, reason, cells in rejects]
    if dialect != "postgresql":
        return rows, tags, reject_rows
    return tuple(_copy_csv(data) for data in (rows, tags, reject_rows))


def _copy_csv(rows: Iterable[tuple[object, ...]]) -> bytes:
    """Rows for ``COPY ... (FORMAT csv)``: None becomes an unquoted empty field (NULL)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


class Staging:
    """The temporary tables of one import, on one connection (inside its transaction)."""

    def __init__(self, conn: Connection, extra_tags: list[Tag]) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.extra_tags = extra_tags
        self.imported = 0
        self.updated = 0
        self.analyzed = False
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

    def apply(self) -> None:
        """Apply the staged batch to the real tables, then empty it."""
        run = self.conn.execute
        if self.dialect == "postgresql" and not self.analyzed:
            # Temporary tables are never auto-analysed; without statistics the planner
            # picks nested loops for the large joins below. Batches look alike, so the
            # first one's statistics serve for the rest.
            self.conn.exec_driver_sql("ANALYZE import_batch")
            self.analyzed = True
        # A number seen before (earlier in this batch or in an earlier one) is a reject
        # that names the line where it first appeared.
        run(
            text(
                """INSERT INTO import_rejects (line, reason, cells)
                SELECT b.line, 'duplicate of line ' || CAST(COALESCE(s.line, e.first) AS VARCHAR(12)), NULL
                FROM import_batch b
                LEFT JOIN import_seen s ON s.phone = b.phone
                LEFT JOIN (SELECT phone, MIN(line) AS first FROM import_batch GROUP BY phone) e
                  ON e.phone = b.phone AND e.first < b.line
                WHERE s.phone IS NOT NULL OR e.phone IS NOT NULL"""
            )
        )
        # The duplicates just rejected are the only cell-less rejects of this batch's lines.
        run(
            text(
                """DELETE FROM import_batch WHERE line IN (
                     SELECT line FROM import_rejects
                     WHERE cells IS NULL AND line >= (SELECT MIN(line) FROM import_batch))"""
            )
        )
        run(text("INSERT INTO import_seen (phone, line) SELECT phone, line FROM import_batch"))
        self._upsert()
        for table in ("import_batch", "import_batch_tags", "import_ids"):
            self.conn.exec_driver_sql(f"DELETE FROM {table}")

    def _upsert(self) -> None:
        run = self.conn.execute
        now = bindparam("now", utcnow(), type_=UTCDateTime)
        fields = bindparam("fields", {}, type_=JSON)
        # Existing contacts first: empty cells never erase, a given timezone replaces.
        update = """UPDATE contacts SET
              name = COALESCE(r.name, contacts.name),
              language = COALESCE(r.language, contacts.language),
              timezone = COALESCE(r.tz_given, contacts.timezone, r.tz_derived),
              updated_at = :now
            FROM import_batch r WHERE contacts.phone = r.phone"""
        # Then the new ones. A contact another import created meanwhile is updated too.
        insert = """INSERT INTO contacts (phone, phone_kind, name, language, timezone, fields, consent,
                                     created_at, updated_at)
            SELECT r.phone, r.phone_kind, r.name, r.language, COALESCE(r.tz_given, r.tz_derived), :fields,
                   'unknown', :now, :now
            FROM import_batch r WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.phone = r.phone)
            ON CONFLICT (phone) DO UPDATE SET
              name = COALESCE(excluded.name, contacts.name),
              language = COALESCE(excluded.language, contacts.language),
              updated_at = excluded.updated_at"""
        if self.dialect == "postgresql":
            # RETURNING fills the batch's phone -> id map in the same pass, so that the
            # tag and consent statements below join a batch-sized table, not contacts.
            updated = run(
                text(
                    f"WITH u AS ({update} RETURNING contacts.id, contacts.phone) "
                    "INSERT INTO import_ids (phone, id) SELECT phone, id FROM u"
                ).bindparams(now)
            ).rowcount
            inserted = run(
                text(
                    f"WITH i AS ({insert} RETURNING contacts.id, contacts.phone) "
                    "INSERT INTO import_ids (phone, id) SELECT phone, id FROM i"
                ).bindparams(now, fields)
            ).rowcount
        else:
            updated = run(text(update).bindparams(now)).rowcount
            inserted = run(text(insert).bindparams(now, fields)).rowcount
            run(
                text(
                    "INSERT INTO import_ids (phone, id) SELECT c.phone, c.id FROM import_batch r "
                    "JOIN contacts c ON c.phone = r.phone"
                )
            )
        self.updated += updated
        self.imported += inserted
        # The file's own tags, then each --tag for rows that did not set that tag.
        sources: list[tuple[str, dict[str, Any]]] = [
            (
                "SELECT i.id, t.name, t.value FROM import_batch_tags t JOIN import_batch r ON r.line = t.line "
                "JOIN import_ids i ON i.phone = r.phone WHERE 1 = 1",
                {},
            )
        ]
        for tag in self.extra_tags:
            sources.append(
                (
                    "SELECT i.id, CAST(:name AS VARCHAR(64)), CAST(:value AS VARCHAR(255)) "
                    "FROM import_batch r JOIN import_ids i ON i.phone = r.phone "
                    "WHERE NOT EXISTS (SELECT 1 FROM import_batch_tags t "
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
                FROM import_batch r JOIN import_ids i ON i.phone = r.phone JOIN contacts c ON c.id = i.id
                WHERE r.consent IS NOT NULL AND r.consent <> c.consent"""
            ).bindparams(now)
        )
        run(
            text(
                """UPDATE contacts SET consent = r.consent FROM import_batch r
                WHERE contacts.phone = r.phone AND r.consent IS NOT NULL AND contacts.consent <> r.consent"""
            )
        )

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
