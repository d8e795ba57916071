"""Write one staged batch of an import into contacts, contact_tags and the consent ledger.

``bot.import_staging`` has filled ``import_batch`` (one row per number, duplicates
already dropped) and ``import_batch_tags`` (the file's tags and the import's ``--tag``
list, by line). Existing contacts are updated (empty cells never erase, a given timezone
replaces), new ones inserted; a tag without a value never wipes the value a valued tag
already has.

On PostgreSQL most rows of a large import are new contacts, and they take the short
road: their ids were drawn from the contacts sequence before parsing, so they are
inserted as they are, and their tags copied straight in (a contact created in this
transaction cannot have tags yet). Only the numbers that turn out to exist already pay
for the upsert's joins and conflict handling. SQLite keeps the general form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.db import UTCDateTime, utcnow

_CONTACT_COLUMNS = "phone, phone_kind, name, language, timezone, fields, consent, created_at, updated_at"
# Existing contacts: empty cells never erase, a given timezone replaces the one stored.
_UPDATE_SET = """name = COALESCE(r.name, contacts.name),
    language = COALESCE(r.language, contacts.language),
    timezone = COALESCE(r.tz_given, contacts.timezone, r.tz_derived),
    updated_at = :now"""
_TAG_CONFLICT = "ON CONFLICT (contact_id, name) DO UPDATE SET value = COALESCE(excluded.value, contact_tags.value)"
# New contacts keep the id drawn for them while staging, and the file's consent.
_INSERT_NEW = f"""INSERT INTO contacts (id, {_CONTACT_COLUMNS})
    SELECT id, phone, phone_kind, name, language, COALESCE(tz_given, tz_derived), :fields,
           COALESCE(consent, 'unknown'), :now, :now"""
UNIQUE_VIOLATION = "23505"
_TYPES = {"now": UTCDateTime, "fields": JSON}
_LEDGER = "INSERT INTO consent_events (contact_id, status, channel, source, note, created_at)"


def upsert(conn: Connection, rows: int) -> tuple[int, int]:
    """Apply the staged batch of ``rows`` numbers; return (imported, updated)."""
    params: dict[str, Any] = {"now": utcnow(), "fields": {}}
    if conn.dialect.name == "postgresql":
        return _upsert_postgresql(conn, rows, params)
    return _upsert_general(conn, params)


def _run(conn: Connection, sql: str, params: dict[str, Any]) -> int:
    """Execute ``sql`` with those of ``params`` it names; return the rows it touched."""
    used = [bindparam(k, v, type_=_TYPES[k]) for k, v in params.items() if f":{k}" in sql]
    return conn.execute(text(sql).bindparams(*used)).rowcount


def may_skip_key_checks(conn: Connection) -> bool:
    """Whether this session may insert tag rows without the foreign key's row triggers.

    It needs the right to set ``session_replication_role`` (a superuser; on PostgreSQL
    15+ also a role granted ``SET`` on it), and ``contact_tags`` must have no trigger or
    rule besides the foreign key's own, since the replica role silences them all.
    """
    if conn.dialect.name != "postgresql":
        return False
    if conn.exec_driver_sql("SHOW is_superuser").scalar_one() != "on":
        if int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) < 150000:
            return False
        if not conn.exec_driver_sql("SELECT has_parameter_privilege('session_replication_role', 'SET')").scalar():
            return False
    others = conn.exec_driver_sql(
        "SELECT (SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'contact_tags'::regclass AND NOT tgisinternal)"
        " + (SELECT COUNT(*) FROM pg_rewrite WHERE ev_class = 'contact_tags'::regclass)"
    ).scalar_one()
    return others == 0


def insert_new(conn: Connection, skip_key_checks: bool, copy_tags: Callable[[], None]) -> str | None:
    """Apply the staged batch assuming every number is new to the file and to contacts.

    PostgreSQL only. Returns None when that held and the batch is applied, else the name
    of the table that proved it wrong (``import_seen``: a duplicate in the file,
    ``contacts``: a number that exists), with nothing of the batch applied.
    ``copy_tags`` copies the batch's tag rows (drawn contact ids) into ``contact_tags``.

    With ``skip_key_checks`` (see ``may_skip_key_checks``) the tag rows go in without
    the foreign key's per-row check, which was most of PostgreSQL's work in an import:
    every one of them points at a contact inserted just before, in this transaction,
    invisible to everyone else, so the check cannot fail and its row lock protects nothing.
    """
    params: dict[str, Any] = {"now": utcnow(), "fields": {}}
    try:
        # A savepoint, so that a unique violation undoes only this attempt.
        with conn.begin_nested():
            conn.exec_driver_sql("INSERT INTO import_seen (phone, line) SELECT phone, line FROM import_batch")
            _run(conn, f"{_INSERT_NEW} FROM import_batch", params)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
            raise
        table = exc.orig.diag.table_name  # type: ignore[union-attr]
        return table or "contacts"
    _ledger_of_new_contacts(conn, params)
    # A contact created in this transaction has no tags yet: a plain COPY, no conflict.
    if skip_key_checks:
        # Undone below, or by the rollback if the copy fails.
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    copy_tags()
    if skip_key_checks:
        conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
    return None


def _ledger_of_new_contacts(conn: Connection, params: dict[str, Any]) -> None:
    # New contacts were inserted with the file's consent: the ledger records it.
    _run(
        conn,
        f"""{_LEDGER}
        SELECT id, consent, NULL, 'import', 'line ' || CAST(line AS VARCHAR(12)), :now
        FROM import_batch WHERE consent IS NOT NULL AND NOT existing""",
        params,
    )


def _upsert_postgresql(conn: Connection, rows: int, params: dict[str, Any]) -> tuple[int, int]:
    # DO NOTHING rather than DO UPDATE: a number that exists already (or that another
    # session has just added) is skipped here and handled below with its real id.
    imported = _run(conn, f"{_INSERT_NEW} FROM import_batch ON CONFLICT (phone) DO NOTHING", params)
    updated = 0
    if imported < rows:
        # The skipped rows: take the existing contact's id instead of the drawn one.
        _run(
            conn,
            """UPDATE import_batch b SET drawn = b.id, id = c.id, existing = true
            FROM contacts c WHERE c.phone = b.phone AND c.id <> b.id""",
            params,
        )
        _run(
            conn,
            f"""{_LEDGER}
            SELECT c.id, r.consent, NULL, 'import', 'line ' || CAST(r.line AS VARCHAR(12)), :now
            FROM import_batch r JOIN contacts c ON c.id = r.id
            WHERE r.existing AND r.consent IS NOT NULL AND r.consent <> c.consent""",
            params,
        )
        updated = _run(
            conn,
            f"""UPDATE contacts SET {_UPDATE_SET}, consent = COALESCE(r.consent, contacts.consent)
            FROM import_batch r WHERE r.existing AND contacts.id = r.id""",
            params,
        )
        _run(
            conn,
            f"""INSERT INTO contact_tags (contact_id, name, value)
            SELECT b.id, t.name, t.value FROM import_batch_tags t JOIN import_batch b ON b.drawn = t.contact_id
            WHERE b.existing {_TAG_CONFLICT}""",
            params,
        )
    _ledger_of_new_contacts(conn, params)
    # The join leaves out the tags of rows dropped as duplicates.
    _run(
        conn,
        """INSERT INTO contact_tags (contact_id, name, value)
        SELECT t.contact_id, t.name, t.value FROM import_batch_tags t JOIN import_batch b ON b.id = t.contact_id
        WHERE NOT b.existing""",
        params,
    )
    return imported, updated


def _upsert_general(conn: Connection, params: dict[str, Any]) -> tuple[int, int]:
    updated = _run(
        conn, f"UPDATE contacts SET {_UPDATE_SET} FROM import_batch r WHERE contacts.phone = r.phone", params
    )
    # Then the new ones. A contact another import created meanwhile is updated too.
    imported = _run(
        conn,
        f"""INSERT INTO contacts ({_CONTACT_COLUMNS})
        SELECT r.phone, r.phone_kind, r.name, r.language, COALESCE(r.tz_given, r.tz_derived), :fields,
               'unknown', :now, :now
        FROM import_batch r WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.phone = r.phone)
        ON CONFLICT (phone) DO UPDATE SET
          name = COALESCE(excluded.name, contacts.name),
          language = COALESCE(excluded.language, contacts.language),
          updated_at = excluded.updated_at""",
        params,
    )
    _run(
        conn,
        """INSERT INTO import_ids (phone, id)
        SELECT c.phone, c.id FROM import_batch r JOIN contacts c ON c.phone = r.phone""",
        params,
    )
    _run(
        conn,
        f"""INSERT INTO contact_tags (contact_id, name, value)
        SELECT i.id, t.name, t.value FROM import_batch_tags t JOIN import_batch r ON r.line = t.line
        JOIN import_ids i ON i.phone = r.phone WHERE 1 = 1 {_TAG_CONFLICT}""",
        params,
    )
    _run(
        conn,
        f"""{_LEDGER}
        SELECT c.id, r.consent, NULL, 'import', 'line ' || CAST(r.line AS VARCHAR(12)), :now
        FROM import_batch r JOIN import_ids i ON i.phone = r.phone JOIN contacts c ON c.id = i.id
        WHERE r.consent IS NOT NULL AND r.consent <> c.consent""",
        params,
    )
    _run(
        conn,
        """UPDATE contacts SET consent = r.consent FROM import_batch r
        WHERE contacts.phone = r.phone AND r.consent IS NOT NULL AND contacts.consent <> r.consent""",
        params,
    )
    return imported, updated
