"""Per-request access to the process's runtime and a database session."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from bot.runtime import Runtime


def runtime() -> Runtime:
    """The app's settings, database and Redis."""
    return current_app.extensions["canvass"]  # type: ignore[no-any-return]


def db_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = runtime().db.sessionmaker()
    return g.db_session  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    """Close the request's session; anything not committed is rolled back."""

    @app.teardown_appcontext
    def close_session(exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()
