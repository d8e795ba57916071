import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.db import Database
from tests.conftest import PG_URL, Backend
from web.schema import current_revision, head_revision, metadata, upgrade_database


@pytest.fixture
def empty_db(backend: Backend, tmp_path: Path) -> Iterator[Database]:
    """A database with no tables at all, on the current backend."""
    if backend.name == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        yield db
        db.dispose()
        return
    from bot.settings import normalize_database_url

    schema = f"canvass_mig_{uuid.uuid4().hex[:8]}"
    admin = Database(normalize_database_url(PG_URL))
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    db = Database(normalize_database_url(PG_URL) + f"{sep}options={quote(f'-csearch_path={schema}')}")
    yield db
    db.dispose()
    with admin.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_upgrade_from_empty_matches_the_models(empty_db: Database) -> None:
    assert current_revision(empty_db) is None
    upgrade_database(empty_db)
    assert current_revision(empty_db) == head_revision()
    with empty_db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_downgrade_to_base_and_up_again(empty_db: Database) -> None:
    from alembic import command

    from web.schema import alembic_config

    upgrade_database(empty_db)
    command.downgrade(alembic_config(empty_db), "base")
    assert set(inspect(empty_db.engine).get_table_names()) <= {"alembic_version"}
    upgrade_database(empty_db)
    assert {"contacts", "contact_tags", "consent_events", "users", "api_tokens"} <= set(
        inspect(empty_db.engine).get_table_names()
    )


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()
