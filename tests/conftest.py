"""Fixtures: real databases (SQLite and PostgreSQL), real Redis, the app and its clients.

A test that asks for ``db`` or ``app`` runs once per database backend; one that does
not runs once. PostgreSQL tests use a private schema (so parallel runs do not collide);
when PostgreSQL cannot be reached they are skipped — unless CI=true, where that fails.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis as redis_lib
from sqlalchemy import text

from bot.db import Database
from bot.settings import normalize_database_url
from web.schema import metadata, upgrade_database

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_reachable() -> str | None:
    import psycopg

    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}".strip()
    return None


class Backend:
    """A migrated database for the whole session, emptied after each test."""

    def __init__(self, name: str, url: str, cleanup: list) -> None:  # type: ignore[type-arg]
        self.name = name
        self.url = url
        self.cleanup = cleanup

    def database(self) -> Database:
        return Database(self.url)

    def empty(self, db: Database) -> None:
        tables = [t.name for t in reversed(metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if self.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))


def unavailable(reason: str) -> None:
    """Skip a test whose outside tool is missing, or fail it when CI=true requires the tool."""
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Stoplight Prism serving Twilio's API 2010 document (``tests.fakes.prism``), for the session."""
    from tests.fakes.prism import PrismUnavailable, serve_prism

    try:
        with serve_prism(tmp_path_factory.mktemp("prism") / "prism.log") as url:
            yield url
    except PrismUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def _backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Backend | str]]:
    cleanup: list = []  # type: ignore[type-arg]
    found: dict[str, Backend | str] = {}
    sqlite_path = tmp_path_factory.mktemp("sqlite") / "canvass.db"
    found["sqlite"] = Backend("sqlite", f"sqlite:///{sqlite_path}", cleanup)
    problem = _pg_reachable()
    if problem is None:
        schema = f"canvass_test_{uuid.uuid4().hex[:10]}"
        admin = Database(normalize_database_url(PG_URL))
        with admin.engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in PG_URL else "?"
        url = normalize_database_url(PG_URL) + f"{sep}options={quote(f'-csearch_path={schema}')}"
        found["postgresql"] = Backend("postgresql", url, cleanup)
        cleanup.append((admin, schema))
    else:
        found["postgresql"] = problem
    for backend in found.values():
        if isinstance(backend, Backend):
            db = backend.database()
            upgrade_database(db)
            db.dispose()
    yield found
    for admin, schema in cleanup:
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, _backends: dict[str, Backend | str]) -> Backend:
    """One of the two database backends (the test runs once per backend)."""
    found = _backends[request.param]
    if isinstance(found, str):
        message = f"PostgreSQL at {PG_URL} is not reachable ({found})"
        if IN_CI:
            pytest.fail(message + "; CI=true requires it", pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture
def db(backend: Backend) -> Iterator[Database]:
    """A migrated, empty database on the current backend."""
    database = backend.database()
    backend.empty(database)
    yield database
    database.dispose()


@pytest.fixture
def redis() -> Iterator[redis_lib.Redis]:
    """The test Redis database, flushed before each test."""
    conn = redis_lib.Redis.from_url(REDIS_URL)
    conn.flushdb()
    yield conn
    conn.close()


@pytest.fixture
def settings_env(db: Database, backend: Backend, tmp_path: Path) -> dict[str, str]:
    """Environment-style settings pointing at the test database and Redis."""
    return {
        "DATABASE_URL": backend.url,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret-key",
        "CANVASS_VAR_DIR": str(tmp_path / "var"),
        "TESTING": "true",
    }


@pytest.fixture
def app(settings_env: dict[str, str], redis: redis_lib.Redis):  # type: ignore[no-untyped-def]
    """The Flask app on the test database (runs once per backend)."""
    from web import create_app

    application = create_app(settings_env)
    yield application
    application.extensions["canvass"].close()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:  # type: ignore[no-untyped-def]
    """Fetch a page and return the CSRF token in its form."""
    page = client.get(path)
    match = CSRF.search(page.get_data(as_text=True))
    assert match, f"no csrf_token on {path}"
    return match.group(1)


def login(client, email: str, password: str):  # type: ignore[no-untyped-def]
    """Sign in through the real form (CSRF included)."""
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def cli(app):  # type: ignore[no-untyped-def]
    """Run a ``canvass`` command against the test app: ``cli("contacts", "add", ...)``."""
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from web.cli import cli as group

    def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(group, list(args), obj=ScriptInfo(create_app=lambda: app), input=input)

    return run


@pytest.fixture
def make_app(settings_env: dict[str, str], redis: redis_lib.Redis):  # type: ignore[no-untyped-def]
    """Build extra apps with changed settings; their connections are closed afterwards."""
    from web import create_app

    made = []

    def build(**overrides: str):  # type: ignore[no-untyped-def]
        application = create_app({**settings_env, **overrides})
        made.append(application)
        return application

    yield build
    for application in made:
        application.extensions["canvass"].close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens", action="store_true", default=False, help="rewrite golden files (review the diff)"
    )
