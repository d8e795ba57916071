"""REST API: users and their API tokens (admins only)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify
from sqlalchemy import select

from web.api import bp, json_body, one_or_404, text_field
from web.api.campaigns import iso
from web.api.paging import keyset
from web.auth.access import requires
from web.context import db_session
from web.errors import BadInput, Conflict
from web.models import Role, User
from web.users import UserError, create_user, issue_token


def user_json(u: User) -> dict[str, Any]:
    """A user as the API shows it (never a password hash or a token)."""
    return {
        "id": u.id,
        "email": u.email,
        "role": u.role,
        "active": u.active,
        "created_at": iso(u.created_at),
        "last_login_at": iso(u.last_login_at),
    }


def _user(user_id: int) -> User:
    return one_or_404(User, user_id, what="user", field="user_id")


@bp.get("/users")
@requires(Role.ADMIN)
def list_users() -> Any:
    """Users by id."""
    shown, cursor = keyset(select(User), User.id, descending=False)
    return jsonify({"users": [user_json(u) for u in shown], "next_cursor": cursor})


@bp.post("/users")
@requires(Role.ADMIN)
def add_user() -> Any:
    """Create a user: ``{"email", "role", "password"}`` (no password: API tokens only)."""
    body = json_body()
    password = None if body.get("password") is None else text_field(body, "password")
    s = db_session()
    try:
        user = create_user(s, text_field(body, "email"), text_field(body, "role"), password)
    except UserError as exc:
        s.rollback()
        raise BadInput(str(exc).removeprefix(f"{exc.field}: "), field=exc.field) from None
    s.commit()
    return jsonify(user_json(user)), 201


@bp.patch("/users/<int:user_id>")
@requires(Role.ADMIN)
def patch_user(user_id: int) -> Any:
    """Change a user's role or deactivate them (which ends their sessions); not one's own."""
    user = _user(user_id)
    body = json_body()
    unknown = sorted(set(body) - {"role", "active"})
    if unknown:
        raise BadInput("cannot be changed here; the fields are role and active", field=unknown[0])
    if user.id == g.user.id:
        raise Conflict("you cannot change your own role or deactivate yourself; ask another admin", field="user_id")
    if "role" in body:
        role = body["role"]
        if role not in {r.value for r in Role}:
            raise BadInput(f"must be one of {', '.join(r.value for r in Role)}, got {role!r}", field="role")
        user.role = role
    if "active" in body:
        if not isinstance(body["active"], bool):
            raise BadInput("must be true or false", field="active")
        if user.active and not body["active"]:
            user.session_version += 1  # signed-in browsers are signed out at their next request
        user.active = body["active"]
    db_session().commit()
    return jsonify(user_json(user))


@bp.post("/users/<int:user_id>/tokens")
@requires(Role.ADMIN)
def add_token(user_id: int) -> Any:
    """Issue a Bearer token for the user; it is shown this once and stored only as a hash."""
    user = _user(user_id)
    if not user.active:
        raise Conflict(f"{user.email} is deactivated", field="user_id")
    token = issue_token(db_session(), user)
    db_session().commit()
    return jsonify({"user_id": user.id, "token": token}), 201
