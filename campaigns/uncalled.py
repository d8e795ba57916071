"""The claimed rows whose provider call has not begun, kept in Redis per campaign.

A row is added when it is claimed (before the claim commits) and taken out by the thread
that sends it, right before the provider call — a thread that finds it gone does not
call. So a row still listed when its worker died was certainly never sent, and the
reconciler puts it back to ``pending`` instead of making it ``unknown``. Taking a row out
is the one atomic step both sides race for (``SREM``): whoever removes it owns it. Losing
the list (Redis flushed) errs on the safe side: every row left ``sending`` counts as
possibly sent.

A batch job's sending threads take their rows out together: the threads that ask while a
round trip is under way are served by the next one, a single script of ``SREM`` (each
thread is still told about its own row, and calls only if it took it). At a few hundred
sends a second most sends share a round trip; a lone send pays one, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import redis

log = logging.getLogger(__name__)

# SREM each row; 1 for the rows removed (by this call), 0 for the others.
_TAKE_MANY = """
local out = {}
for i, rid in ipairs(ARGV) do out[i] = redis.call('SREM', KEYS[1], rid) end
return out
"""


class _Ask:
    """One thread's wish to take one row out, and the answer it gets."""

    __slots__ = ("answered", "error", "lead", "recipient_id", "taken")

    def __init__(self, recipient_id: int) -> None:
        self.recipient_id = recipient_id
        # Held until the round that served this ask (or made its thread the next leader) ends.
        self.answered = threading.Lock()
        self.answered.acquire()
        self.lead = False
        self.taken = False
        self.error: BaseException | None = None

    def result(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.taken


class Uncalled:
    """The not-yet-called list of one campaign (see the module's docstring)."""

    TTL_S = 24 * 3600

    def __init__(self, conn: Any, campaign_id: int) -> None:
        self.conn = conn
        self.key = f"canvass:campaign:{campaign_id}:uncalled"
        self._lock = threading.Lock()
        self._asks: list[_Ask] = []
        self._busy = False  # a thread is running a round (and will hand over to the next ask)
        self.round_trips = 0
        self._take_script = conn.register_script(_TAKE_MANY)

    def add(self, recipient_ids: Sequence[int]) -> None:
        """List claimed rows (call inside the claim's transaction, before it commits)."""
        if recipient_ids:
            with self.conn.pipeline() as pipe:
                pipe.sadd(self.key, *recipient_ids)
                pipe.expire(self.key, self.TTL_S)
                pipe.execute()

    def take(self, recipient_id: int) -> bool:
        """Take a row out; True when this caller took it (and so may call the provider).

        Safe from many threads at once (see the module's docstring); an error (Redis
        unreachable) reaches every thread whose row was in the failed round trip, and the
        next round starts afresh.
        """
        ask = _Ask(recipient_id)
        with self._lock:
            self._asks.append(ask)
            lead = not self._busy
            self._busy = True
        if not lead:
            ask.answered.acquire()
            if not ask.lead:
                return ask.result()
        self._round()
        return ask.result()

    def take_or_refuse(self, recipient_id: int) -> bool:
        """``take``, but False when Redis is unreachable: not called, and not callable safely."""
        try:
            return self.take(recipient_id)
        except redis.RedisError:
            log.warning("%s: Redis unreachable before a send; recipient %s back to pending", self.key, recipient_id)
            return False

    def list_again(self, recipient_id: int) -> bool:
        """List a taken row as not called again (it waits for a new slot); False when Redis failed."""
        try:
            self.add([recipient_id])
            return True
        except redis.RedisError:
            return False

    def _round(self) -> None:
        """Serve every ask queued so far with one round trip; hand over to the next ask, if any."""
        with self._lock:
            asks, self._asks = self._asks, []
        try:
            taken = self.take_many([a.recipient_id for a in asks])
            for a in asks:
                a.taken = a.recipient_id in taken
        except BaseException as exc:  # noqa: BLE001 - every thread of the round gets it, none waits forever
            for a in asks:
                a.error = exc
        finally:
            with self._lock:
                following = self._asks[0] if self._asks else None
                if following is None:
                    self._busy = False
                else:
                    following.lead = True  # its thread runs the next round when woken
            for a in asks:
                a.answered.release()
            if following is not None:
                following.answered.release()

    def take_many(self, recipient_ids: Sequence[int]) -> set[int]:
        """Take several rows out; return those this caller took."""
        self.round_trips += 1
        if len(recipient_ids) == 1:
            return set(recipient_ids) if self.conn.srem(self.key, recipient_ids[0]) else set()
        # One script (one command to pack and one reply to read, where a pipeline of SREMs
        # was one of each per row) that says which of the rows it removed.
        removed = self._take_script(keys=[self.key], args=list(recipient_ids), client=self.conn)
        return {rid for rid, gone in zip(recipient_ids, removed, strict=True) if gone}
