"""The claimed rows whose provider call has not begun, kept in Redis per campaign.

A row is added when it is claimed (before the claim commits) and taken out by the thread
that sends it, right before the provider call — a thread that finds it gone does not
call. So a row still listed when its worker died was certainly never sent, and the
reconciler puts it back to ``pending`` instead of making it ``unknown``. Taking a row out
is the one atomic step both sides race for (``SREM``): whoever removes it owns it. Losing
the list (Redis flushed) errs on the safe side: every row left ``sending`` counts as
possibly sent.

An entry names the claim, not only the row: ``{recipient}:{message}:{claimed at}`` (``entry``). A row
released by the reconciler and claimed again is listed with its new message, so a thread
of the first claim that asks late cannot take the second claim's entry and send.

The list must not come back older than it was: a Redis restored from a snapshot taken
before some entries were taken out would list, as never called, rows that were sent. Run
a Redis that keeps its data with ``appendonly yes`` and ``appendfsync always``, or none
on disk at all (the private one ``make test`` and ``canvass up`` start keeps nothing).

A batch job's sending threads take their rows out together: the threads that ask while a
round trip is under way are served by the next one, a single script of ``SREM`` (each
thread is still told about its own row, and calls only if it took it). At a few hundred
sends a second most sends share a round trip; a lone send pays one, as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from typing import Any

import redis

log = logging.getLogger(__name__)

# SREM each row; 1 for the rows removed (by this call), 0 for the others.
_TAKE_MANY = """
local out = {}
for i, e in ipairs(ARGV) do out[i] = redis.call('SREM', KEYS[1], e) end
return out
"""


def entry(recipient_id: int, message_id: int | None, claimed_at: dt.datetime | None) -> str:
    """One claim's entry in the list: its row, the message it sends and when it was claimed.

    The moment (the row's ``sending_at``, in whole microseconds) tells two claims apart
    where a message id alone may not: SQLite gives a deleted last row's id to the next.
    """
    at = "" if claimed_at is None else (claimed_at - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{recipient_id}:{message_id}:{at}"


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class _Ask:
    """One thread's wish to take one row out, and the answer it gets."""

    __slots__ = ("answered", "entry", "error", "lead", "taken")

    def __init__(self, entry: str) -> None:
        self.entry = entry
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

    def add(self, entries: Sequence[str]) -> None:
        """List claims (``entry``; call inside the claim's transaction, before it commits)."""
        if entries:
            with self.conn.pipeline() as pipe:
                pipe.sadd(self.key, *entries)
                pipe.expire(self.key, self.TTL_S)
                pipe.execute()

    def take(self, entry: str) -> bool:
        """Take a claim out; True when this caller took it (and so may call the provider).

        Safe from many threads at once (see the module's docstring); an error (Redis
        unreachable) reaches every thread whose row was in the failed round trip, and the
        next round starts afresh.
        """
        ask = _Ask(entry)
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

    def take_or_refuse(self, entry: str) -> bool:
        """``take``, but False when Redis is unreachable: not called, and not callable safely."""
        try:
            return self.take(entry)
        except redis.RedisError:
            log.warning("%s: Redis unreachable before a send; claim %s back to pending", self.key, entry)
            return False

    def list_again(self, entry: str) -> bool:
        """List a taken claim as not called again (it waits for a new slot); False when Redis failed."""
        try:
            self.add([entry])
            return True
        except redis.RedisError:
            return False

    def _round(self) -> None:
        """Serve every ask queued so far with one round trip; hand over to the next ask, if any."""
        with self._lock:
            asks, self._asks = self._asks, []
        try:
            taken = self.take_many([a.entry for a in asks])
            for a in asks:
                a.taken = a.entry in taken
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

    def take_many(self, entries: Sequence[str]) -> set[str]:
        """Take several claims out; return those this caller took."""
        self.round_trips += 1
        if len(entries) == 1:
            return set(entries) if self.conn.srem(self.key, entries[0]) else set()
        # One script (one command to pack and one reply to read, where a pipeline of SREMs
        # was one of each per row) that says which of the rows it removed.
        removed = self._take_script(keys=[self.key], args=list(entries), client=self.conn)
        return {e for e, gone in zip(entries, removed, strict=True) if gone}
