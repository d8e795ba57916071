"""Login throttling in Redis: per account and per client address, shared by all processes."""

from __future__ import annotations

import hashlib

import redis

WINDOW_S = 15 * 60
MAX_PER_ACCOUNT = 5
MAX_PER_ADDRESS = 30


class LoginThrottle:
    """Counts failed logins; too many in the window blocks further tries."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn

    def _keys(self, email: str, address: str) -> tuple[str, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return f"canvass:login:account:{account}", f"canvass:login:addr:{address}"

    def blocked_for(self, email: str, address: str) -> int:
        """Seconds until another try is allowed (0: allowed now)."""
        account, addr = self._keys(email, address)
        pipe = self.conn.pipeline()
        pipe.get(account)
        pipe.ttl(account)
        pipe.get(addr)
        pipe.ttl(addr)
        acc_n, acc_ttl, addr_n, addr_ttl = pipe.execute()
        wait = 0
        if acc_n is not None and int(acc_n) >= MAX_PER_ACCOUNT:
            wait = max(wait, int(acc_ttl))
        if addr_n is not None and int(addr_n) >= MAX_PER_ADDRESS:
            wait = max(wait, int(addr_ttl))
        return max(wait, 0)

    def failed(self, email: str, address: str) -> None:
        """Count one failure against the account and the address."""
        pipe = self.conn.pipeline()
        for key in self._keys(email, address):
            pipe.incr(key)
            pipe.expire(key, WINDOW_S, nx=True)
        pipe.execute()

    def succeeded(self, email: str, address: str) -> None:
        """A good password clears the account's count (not the address's)."""
        self.conn.delete(self._keys(email, address)[0])
