"""Signing in and out of the console."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session

from web.auth.access import public
from web.auth.sessions import SessionStore
from web.auth.throttle import LoginThrottle
from web.context import db_session, runtime
from web.errors import TooManyAttempts
from web.users import authenticate

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Return ``target`` when it is a path on this site, else ``/``.

    "//evil.example", "https://...", backslashes and control characters (browsers drop
    a tab, so "/<TAB>/evil.example" becomes "//evil.example") would all leave the site.
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    """Show the sign-in form; check the password; start a session."""
    if request.method == "GET":
        return render_template("auth/login.html", next=_safe_next(request.args.get("next")))
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "unknown"
    throttle = LoginThrottle(runtime().redis)
    wait = throttle.blocked_for(email, address)
    if wait:
        raise TooManyAttempts(f"Too many failed sign-ins. Try again in {(wait + 59) // 60} minutes.", wait)
    user = authenticate(db_session(), email, password)
    if user is None:
        throttle.failed(email, address)
        flash("Wrong email or password.", "error")
        return render_template("auth/login.html", next=_safe_next(request.form.get("next")), email=email), 401
    throttle.succeeded(email, address)
    db_session().commit()
    # A fresh cookie: nothing from before the login survives into the session.
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["sv"] = user.session_version
    session["sid"] = SessionStore(runtime().redis).start(user.id)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
@public
def logout() -> Any:
    """End the session (POST with a CSRF token, so no link can sign a user out)."""
    SessionStore(runtime().redis).end(session.get("sid"))
    session.clear()
    flash("Signed out.", "info")
    return redirect("/login")
