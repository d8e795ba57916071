"""The database schema: every domain's tables and the Alembic migrations that build them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import bot.models  # noqa: F401  (registers the tables on Base.metadata)
import campaigns.models  # noqa: F401
import ivr.models  # noqa: F401
import web.models  # noqa: F401
from bot.db import Base, Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
metadata = Base.metadata


def alembic_config(db: Database | None = None) -> Config:
    """An Alembic config pointing at our migrations (and at ``db``'s engine)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if db is not None:
        cfg.attributes["engine"] = db.engine
    return cfg


def upgrade_database(db: Database, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(db), revision)


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None when never migrated)."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision in the migrations folder."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
