"""The one declarative Base, engine creation and sessions shared by every domain."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every canvass table."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: canvass stores aware UTC datetimes only")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        """Return aware UTC datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """Return the current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take it over so that a
        # transaction really starts at the first statement (and BEGIN IMMEDIATE works).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    # A transaction that reads and then writes must hold the write lock from its start:
    # otherwise, if another connection commits in between, SQLite refuses the write at
    # once ("database is locked", SQLITE_BUSY_SNAPSHOT) instead of waiting its turn.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("canvass_write") else "BEGIN")


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Database:
    """An engine and its session factory, created once per process."""

    def __init__(self, url: str, **engine_kwargs: object) -> None:
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """Return ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """Yield a session that commits on success and rolls back on error.

        ``write``: the transaction reads and then writes (SQLite then takes its write lock
        at the start, so the write waits for other writers instead of failing).
        """
        with self.sessionmaker() as session:
            if write and self.dialect == "sqlite":
                session.connection(execution_options={"canvass_write": True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close every pooled connection (after fork, and at shutdown)."""
        self.engine.dispose()


def autocommit_engine(db: Database, pool_size: int = 2) -> Engine:
    """A small pool of ``db``'s server in autocommit, without a ping before each checkout.

    For a webhook's hot path, where every round trip counts: one statement needs no
    BEGIN and COMMIT, and a connection the server dropped fails once (the caller retries
    on ``DBAPIError.connection_invalidated``). SQLite gets ``db``'s own engine.
    """
    if db.dialect == "sqlite":
        return db.engine
    return make_engine(
        db.engine.url.render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,
        pool_size=pool_size,
    )
