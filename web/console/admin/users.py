"""Users and roles: add, change role, deactivate, reset a password, issue and revoke API tokens.

``/users`` (the first users page) answers as before: it is the same view. A new password
or token is shown once, on the page that made it, and never stored in plain text nor put
in a cookie.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, request
from sqlalchemy import func, select

from web import audit
from web.auth.access import requires
from web.console import bp
from web.console.admin import page
from web.context import db_session
from web.errors import NotFound
from web.models import ApiToken, Role, User
from web.users import UserError, change_role, create_user, issue_token, reset_password, revoke_token, set_active

ROLES = [r.value for r in Role]


def _user(user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None:
        raise NotFound(f"There is no user {user_id}.")
    return user


def _listing(**ctx: Any) -> Any:
    s = db_session()
    rows = s.scalars(select(User).order_by(User.email)).all()
    live_tokens = dict(
        s.execute(
            select(ApiToken.user_id, func.count()).where(ApiToken.revoked_at.is_(None)).group_by(ApiToken.user_id)
        ).all()
    )
    return page("console/admin/users.html", users=rows, tokens=live_tokens, roles=ROLES, me=g.user, **ctx)


@bp.route("/users", methods=["GET", "POST"])
@bp.route("/admin/users", methods=["GET", "POST"])
@requires(Role.ADMIN)
def users() -> Any:
    """List users with their role and tokens; add a user."""
    if request.method == "GET":
        return _listing()
    s = db_session()
    form = request.form
    try:
        user = create_user(s, form.get("email", ""), form.get("role", ""), form.get("password", ""))
        audit.record(s, g.user, "user.add", user.email, role=str(user.role))
        s.commit()
    except UserError as exc:
        s.rollback()
        return _listing(errors={exc.field: str(exc)}, form=form)
    flash(f"Created {user.email}.", "info")
    return redirect("/admin/users")


def _detail(user: User, **ctx: Any) -> Any:
    tokens = (
        db_session().scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())).all()
    )
    return page("console/admin/user.html", user=user, tokens=tokens, roles=ROLES, me=g.user, **ctx)


@bp.get("/admin/users/<int:user_id>")
@requires(Role.ADMIN)
def user_page(user_id: int) -> Any:
    """One user: role, active, password, API tokens."""
    return _detail(_user(user_id))


def _act(user_id: int, action: str) -> Any:
    """Run one change on a user, audited; a refusal re-renders the page naming the field."""
    s = db_session()
    user = _user(user_id)
    shown: dict[str, str] = {}
    try:
        if action == "role":
            old = change_role(s, user, request.form.get("role", ""))
            if old == user.role:
                return redirect(f"/admin/users/{user.id}")
            audit.record(s, g.user, "user.role", user.email, role=[old, user.role])
            message = f"{user.email} is now {user.role}."
        elif action in ("deactivate", "activate"):
            set_active(s, user, action == "activate", by=g.user)
            audit.record(s, g.user, f"user.{action}", user.email)
            message = f"{user.email} is {'active again' if user.active else 'deactivated and signed out'}."
        elif action == "password":
            shown["password"] = reset_password(user)
            audit.record(s, g.user, "user.password", user.email)
            message = f"{user.email} has a new password (below, shown once); their sessions have ended."
        elif action == "token":
            shown["token"] = issue_token(s, user)
            audit.record(s, g.user, "token.issue", user.email, prefix=shown["token"][:10])
            message = f"A new API token for {user.email} (below, shown once)."
        else:  # revoke
            token = revoke_token(s, user, request.form.get("token_id", type=int) or 0)
            audit.record(s, g.user, "token.revoke", user.email, prefix=token.prefix)
            message = f"Token {token.prefix}… revoked."
        s.commit()
    except UserError as exc:
        s.rollback()
        return _detail(user, errors={exc.field: str(exc)}, form=request.form)
    if shown:
        # Shown on this answer only: a redirect would have to carry the secret in the cookie.
        flash(message, "info")
        return _detail(user, shown=shown)
    flash(message, "info")
    return redirect(f"/admin/users/{user.id}")


@bp.post("/admin/users/<int:user_id>/role")
@requires(Role.ADMIN)
def user_role(user_id: int) -> Any:
    """Change a user's role."""
    return _act(user_id, "role")


@bp.post("/admin/users/<int:user_id>/deactivate")
@requires(Role.ADMIN)
def user_deactivate(user_id: int) -> Any:
    """Deactivate a user: signed out at once, their tokens refused."""
    return _act(user_id, "deactivate")


@bp.post("/admin/users/<int:user_id>/activate")
@requires(Role.ADMIN)
def user_activate(user_id: int) -> Any:
    """Let a deactivated user sign in again."""
    return _act(user_id, "activate")


@bp.post("/admin/users/<int:user_id>/password")
@requires(Role.ADMIN)
def user_password(user_id: int) -> Any:
    """Reset a user's password to a new random one, shown once."""
    return _act(user_id, "password")


@bp.post("/admin/users/<int:user_id>/tokens")
@requires(Role.ADMIN)
def user_token(user_id: int) -> Any:
    """Issue an API token for a user, shown once."""
    return _act(user_id, "token")


@bp.post("/admin/users/<int:user_id>/tokens/revoke")
@requires(Role.ADMIN)
def user_token_revoke(user_id: int) -> Any:
    """Revoke one of a user's API tokens."""
    return _act(user_id, "revoke")
