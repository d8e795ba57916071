"""Server-side record of console sessions, so that signing out really ends them.

The cookie is signed but held by the browser; a copy taken before logout would stay
valid for its whole lifetime. Each sign-in therefore gets a random id kept in Redis;
logout deletes it, and a cookie whose id is gone is refused.
"""

from __future__ import annotations

import secrets

import redis

LIFETIME_S = 12 * 3600


class SessionStore:
    """Live session ids in Redis, each bound to one user."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn

    @staticmethod
    def _key(sid: str) -> str:
        return f"canvass:session:{sid}"

    def start(self, user_id: int) -> str:
        """Record a new session for ``user_id`` and return its id."""
        sid = secrets.token_urlsafe(24)
        self.conn.set(self._key(sid), str(user_id), ex=LIFETIME_S)
        return sid

    def belongs_to(self, sid: str | None, user_id: int) -> bool:
        """True while the session is live and is ``user_id``'s."""
        if not sid:
            return False
        stored = self.conn.get(self._key(sid))
        return stored is not None and stored.decode() == str(user_id)

    def end(self, sid: str | None) -> None:
        """Forget the session (logout)."""
        if sid:
            self.conn.delete(self._key(sid))
