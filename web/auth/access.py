"""Who is asking, and may they: sessions for the console, Bearer tokens for the API.

Every endpoint is closed by default. A view opens itself with ``@public`` or states the
least role it needs with ``@requires(Role.X)``; a test walks the URL map and fails on any
endpoint that does neither.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Flask, current_app, g, redirect, request, session
from flask_wtf.csrf import CSRFProtect

from web.auth.sessions import SessionStore
from web.context import db_session, runtime
from web.errors import Forbidden, Unauthorized
from web.models import Role, User
from web.users import user_for_token

F = TypeVar("F", bound=Callable[..., Any])
csrf = CSRFProtect()


def public(view: F) -> F:
    """Open a view to anyone (login page, health checks)."""
    view._canvass_public = True  # type: ignore[attr-defined]
    return view


def requires(role: Role) -> Callable[[F], F]:
    """Let in users whose role is ``role`` or above."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            user: User | None = g.get("user")
            if user is None:
                raise Unauthorized("Sign in first.")
            if not user.role_enum.allows(role):
                raise Forbidden(f"This needs the {role.value} role or above; you are {user.role}.")
            return view(*args, **kwargs)

        inner._canvass_role = role  # type: ignore[attr-defined]
        return inner  # type: ignore[return-value]

    return wrap


def read_only(view: F) -> F:
    """Mark a POST that only reads (a query too big for a URL, such as a segment to count).

    Viewers change nothing: a state-changing method open to them must say it reads only,
    and the role matrix (tests/web/test_role_matrix.py) checks that it changes no row.
    """
    view._canvass_read_only = True  # type: ignore[attr-defined]
    return view


def is_read_only(app: Flask, endpoint: str) -> bool:
    """Whether the endpoint's view is marked ``@read_only``."""
    return bool(getattr(app.view_functions.get(endpoint), "_canvass_read_only", False))


def endpoint_rule(app: Flask, endpoint: str) -> str | Role | None:
    """``"public"``, the least role, or None when the view declares neither."""
    view = app.view_functions.get(endpoint)
    if view is None:
        return None
    if getattr(view, "_canvass_public", False):
        return "public"
    return getattr(view, "_canvass_role", None)


def _load_user() -> Any:
    g.user = None
    endpoint = request.endpoint
    if endpoint is None:  # 404: let the error handler answer
        return None
    if endpoint == "static" or endpoint_rule(current_app, endpoint) == "public":
        return None
    if request.path.startswith("/api/"):
        # The API takes Bearer tokens only: a browser's cookie never authorises it,
        # which is why the API needs no CSRF token.
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = user_for_token(db_session(), token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise Unauthorized("Send a valid token: Authorization: Bearer <token> (canvass users token EMAIL).")
        db_session().commit()  # last_used_at
        g.user = user
        return None
    user_id, version = session.get("uid"), session.get("sv")
    user = db_session().get(User, user_id) if user_id else None
    live = user is not None and SessionStore(runtime().redis).belongs_to(session.get("sid"), user.id)
    if user is None or not live or not user.active or user.session_version != version:
        session.clear()
        if request.method == "GET":
            return redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}))
        raise Unauthorized("Your session has ended; sign in again.")
    g.user = user
    return None


def _security_headers(response: Any) -> Any:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    )
    if g.get("user") is not None and not request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Install CSRF protection, the user loader and security headers."""
    csrf.init_app(app)
    app.before_request(_load_user)
    app.after_request(_security_headers)

    @app.context_processor
    def inject_user() -> dict[str, Any]:
        return {"current_user": g.get("user"), "Role": Role}
