"""Users: creation, password checks and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db import utcnow
from web.models import ApiToken, Role, User

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 12
TOKEN_PREFIX = "cvs_"  # noqa: S105 - a visible marker, not a secret
# argon2id with the library's defaults (RFC 9106 "low memory" profile).
_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs as long as a hit.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


class UserError(ValueError):
    """Bad input for a user; ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def normalize_email(email: str) -> str:
    """Lower-case and check an email address."""
    value = (email or "").strip().lower()
    if not EMAIL.match(value) or len(value) > 254:
        raise UserError("email", f"{email!r} is not an email address")
    return value


def check_password(password: str) -> None:
    """Refuse passwords that are too short to resist guessing."""
    if len(password) < MIN_PASSWORD:
        raise UserError("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise UserError("password", "must be at most 1024 characters")


def create_user(session: Session, email: str, role: str, password: str | None) -> User:
    """Create a user; raises ``UserError`` for a taken email, bad role or weak password."""
    email = normalize_email(email)
    try:
        role_value = Role(role).value
    except ValueError:
        raise UserError("role", f"must be one of {', '.join(r.value for r in Role)}, got {role!r}") from None
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserError("email", f"{email} already has an account")
    user = User(email=email, role=role_value, active=True, session_version=1)
    if password is not None:
        check_password(password)
        user.password_hash = _hasher.hash(password)
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    """Change the password and sign out every session of the user."""
    check_password(password)
    user.password_hash = _hasher.hash(password)
    user.session_version += 1


def find_user(session: Session, email: str) -> User | None:
    """The user with this email, if any (case-insensitive)."""
    return session.scalar(select(User).where(func.lower(User.email) == (email or "").strip().lower()))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active user whose password matches, else None (in constant-ish time)."""
    user = find_user(session, email)
    stored = user.password_hash if user is not None and user.active and user.password_hash else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None or stored is _DUMMY_HASH:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def issue_token(session: Session, user: User) -> str:
    """Create an API token; the plain token is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), prefix=token[:10]))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a token belongs to, if the token is valid and not revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    return row.user


def _token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no KDF needed).
    return hashlib.sha256(token.encode()).hexdigest()


def _other_active_admins(session: Session, user: User) -> int:
    return (
        session.scalar(
            select(func.count()).where(User.role == Role.ADMIN.value, User.active.is_(True), User.id != user.id)
        )
        or 0
    )


def change_role(session: Session, user: User, role: str) -> str:
    """Give ``user`` another role; returns the old one. The last active admin keeps theirs."""
    try:
        new = Role(role).value
    except ValueError:
        raise UserError("role", f"must be one of {', '.join(r.value for r in Role)}, got {role!r}") from None
    old = user.role
    if old == Role.ADMIN.value and new != old and user.active and not _other_active_admins(session, user):
        raise UserError("role", f"{user.email} is the last active admin: make someone else admin first")
    user.role = new
    session.flush()
    return old


def set_active(session: Session, user: User, active: bool, *, by: User) -> None:
    """Deactivate (signed out at once, tokens refused) or reactivate a user."""
    if not active and user.id == by.id:
        raise UserError("active", "you cannot deactivate yourself")
    if not active and user.role == Role.ADMIN.value and not _other_active_admins(session, user):
        raise UserError("active", f"{user.email} is the last active admin")
    user.active = active
    if not active:
        user.session_version += 1  # every session of theirs ends
    session.flush()


def reset_password(user: User) -> str:
    """Give ``user`` a new random password (returned once) and sign them out everywhere."""
    password = secrets.token_urlsafe(15)
    set_password(user, password)
    return password


def revoke_token(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s API tokens (kept, marked revoked)."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise UserError("token", f"{user.email} has no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token
