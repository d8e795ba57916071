"""A fresh canvass database for a benchmark (a private schema on PostgreSQL)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import text

from bot.db import Database
from bot.settings import normalize_database_url


def add_pg_option(parser: argparse.ArgumentParser) -> None:
    """``--pg URL``: the PostgreSQL server a benchmark uses (TEST_DATABASE_URL, else the local one)."""
    parser.add_argument(
        "--pg", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )


def fresh_database(url: str, schema: str | None) -> Database:
    """Drop and recreate the tables; on PostgreSQL inside ``schema``."""
    url = normalize_database_url(url)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    kwargs = {}
    if schema and url.startswith("postgresql"):
        admin = Database(url)
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        # In the URL (not connect_args), so that other processes given the URL see the schema too.
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    db = Database(url, **kwargs)
    from web.schema import upgrade_database

    upgrade_database(db)
    return db


def drop_schema(url: str, schema: str) -> None:
    """Drop a benchmark's private schema (PostgreSQL only)."""
    url = normalize_database_url(url)
    if url.startswith("postgresql"):
        admin = Database(url)
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
