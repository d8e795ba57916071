"""The inbound queue's plumbing: store a webhook's message, wake the drain, lock voters.

The webhook's whole job on the common path is one INSERT here (``Inbox.store``: the
table's unique MessageSid is the de-duplication, shared by every process) and, at most
every ``WAKE_GRACE_S`` per process, one Redis ``SET NX`` (``Inbox.nudge``); routing
happens in a worker (``bot.conversations.drain_inbound``), which claims waiting rows in
the database and holds the per-voter locks while it routes them. Everything a request
needs is built once per process (``inbox_for``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
import redis
from redis.exceptions import LockError
from rq import Queue
from sqlalchemy import Row, bindparam, case, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from bot.channels.base import Inbound
from bot.db import Database, make_engine, utcnow
from bot.models import QueuedInbound
from bot.phones import InvalidPhone, PhoneParser
from bot.router import contact_lock_key
from bot.runtime import Runtime

TABLE = QueuedInbound.__table__
# Set while a drain job is queued or about to look for work; the first webhook that
# finds it unset queues the next drain. It expires in case that job is lost.
DRAIN_WOKEN = "canvass:inbound:drain-woken"
WAKE_TTL_S = 60
# A process that asked Redis for a drain (and got an answer) this recently may skip
# asking again for a row it commits (``Inbox.nudge``); in return every woken drain looks
# for work once more this long after it rested (``Inbox.rest``).
WAKE_GRACE_S = 0.1
LOCK_TTL_S = 30  # as bot.router.redis_lock: the longest a voter's routing may hold the lock
MAX_ATTEMPTS = 3  # a row whose routing raised this often is given up (outcome "failed")
_JOB_ID = re.compile(r"[^A-Za-z0-9_-]")
_INSERT_PG = (
    "INSERT INTO inbound_queue (provider_id, provider, channel, from_phone, to_address, body, media,"
    " profile_name, button_payload, received_at, attempts)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s::json, %s, %s, %s, 0) ON CONFLICT (provider_id) DO NOTHING"
)
# redis-py's Lock release: delete the key only if it still holds our token.
_RELEASE = """
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1])
return 1
"""


class Inbox:
    """The inbound queue as one process uses it (made once, by ``inbox_for``)."""

    def __init__(self, db: Database, conn: redis.Redis, *, region: str) -> None:
        self.db = db
        self.redis = conn
        self.queue = Queue("high", connection=conn)
        self.phones = PhoneParser(region)
        self.locks = ContactLocks(conn)
        # When this process last asked Redis for a drain and got an answer (monotonic).
        self._asked_at = -math.inf
        # SQLite: a plain INSERT, made once and cached by SQLAlchemy; a duplicate is told
        # apart by its unique-constraint error.
        self._insert = insert(TABLE)
        self._engine = db.engine
        if db.dialect != "sqlite":
            # A small pool of its own, in autocommit (one INSERT needs no BEGIN and
            # COMMIT round trips: the row is durable when it returns) and without the
            # shared pool's ping before every checkout, another round trip: a
            # connection the server dropped fails once, is replaced, and is retried.
            self._engine = make_engine(
                db.engine.url.render_as_string(hide_password=False),
                isolation_level="AUTOCOMMIT",
                pool_pre_ping=False,
                pool_size=2,
                # Nothing to roll back when a connection comes back: there is no transaction.
                pool_reset_on_return=None,
            )

    def store(self, inbound: Inbound, provider: str) -> bool:
        """Store a message durably; False when this provider id was stored before.

        The unique provider id (Twilio's MessageSid) is the de-duplication every process
        shares: a retried delivery finds the row (kept a day after it was routed, see
        ``purge``; the router also refuses a provider id already in ``messages``).
        """
        if self._engine is not self.db.engine:
            return self._store_pg(inbound, provider)
        params = {
            "provider_id": inbound.provider_id,
            "provider": provider,
            "channel": inbound.channel,
            "from_phone": inbound.from_phone,
            "to_address": inbound.to,
            "body": inbound.text,
            "media": [list(m) for m in inbound.media],
            "profile_name": inbound.profile_name,
            "button_payload": inbound.button_payload,
            "received_at": utcnow(),
            "attempts": 0,
        }
        for attempt in (1, 2):
            try:
                with self._engine.begin() as conn:
                    conn.execute(self._insert, params)
                return True
            except IntegrityError as exc:
                if "provider_id" not in str(exc.orig):
                    raise
                return False  # stored before: a retried delivery
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def _store_pg(self, inbound: Inbound, provider: str) -> bool:
        # The driver's own prepared statement on a pooled connection: ~0.08 ms of CPU
        # where SQLAlchemy's execution of the same INSERT took ~0.3 ms, and its ON
        # CONFLICT form (not cached) ~0.5 ms. ON CONFLICT DO NOTHING tells a duplicate by
        # the row count, without an error and its rollback.
        params = (
            inbound.provider_id,
            provider,
            inbound.channel,
            inbound.from_phone,
            inbound.to,
            inbound.text,
            json.dumps([list(m) for m in inbound.media]),
            inbound.profile_name,
            inbound.button_payload,
            utcnow(),
        )
        for attempt in (1, 2):
            conn = self._engine.raw_connection()
            try:
                # One cursor kept per connection (making one costs as much as the pool).
                cursor = conn.info.get("inbox_cursor")
                if cursor is None or cursor.connection is not conn.driver_connection:
                    cursor = conn.info["inbox_cursor"] = conn.driver_connection.cursor()
                cursor.execute(_INSERT_PG, params, prepare=True)
                return bool(cursor.rowcount)
            except psycopg.OperationalError:
                if attempt == 2 or not conn.driver_connection.closed:
                    raise
                conn.invalidate()  # the server dropped it: replaced, and the INSERT retried
            finally:
                conn.close()
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Release the insert pool's connections (``Runtime.close`` calls this)."""
        if self._engine is not self.db.engine:
            self._engine.dispose()

    def nudge(self, why: str) -> None:
        """Make sure a drain looks at the table after the row this process just committed.

        Asking Redis (``wake``) for every message would be a round trip per webhook; a
        process whose last ``wake`` began less than ``WAKE_GRACE_S`` ago skips it. Why
        no row is left behind: that ``wake`` began at a moment A and was answered after
        Redis saw the flag set (by it or by another process), so a drain job is queued
        whose ``rest`` clears the flag after A; that drain looks for work until at least
        ``WAKE_GRACE_S`` after its ``rest``, so after A + ``WAKE_GRACE_S``, and this row
        was committed before now, which is before A + ``WAKE_GRACE_S``. Only durations
        are compared, each on its own process's monotonic clock. If that drain is lost
        (Redis flushed, a worker killed) the row waits for the scheduler's sweep, as
        every row of a lost drain does.
        """
        if time.monotonic() - self._asked_at < WAKE_GRACE_S:
            return
        self.wake(why)

    def wake(self, why: str) -> bool:
        """Queue a drain job unless one is already woken; True when this call queued it."""
        asked = time.monotonic()
        if not self.redis.set(DRAIN_WOKEN, why, nx=True, ex=WAKE_TTL_S):
            self._asked_at = asked
            return False
        try:
            # A job id per wake-up (not one fixed id): a second job is harmless, because
            # the drain claims rows in the database, while re-using the id of a running
            # job could lose the new one when the finished job's key is cleaned up.
            self.queue.enqueue(
                "bot.tasks.drain_inbound", job_id=f"inbound-drain-{_JOB_ID.sub('', why)[:60]}", result_ttl=60
            )
        except BaseException:
            self.redis.delete(DRAIN_WOKEN)  # let the next webhook try again
            raise
        self._asked_at = asked
        return True

    def rest(self) -> float:
        """A drain is about to look for work: from now on, a new message wakes another one.

        Returns the monotonic time until which the drain must go on looking for work
        (``WAKE_GRACE_S`` from now), however little it finds: a webhook that learnt
        of this drain before the flag was cleared may have skipped waking another
        (``nudge``).
        """
        self.redis.delete(DRAIN_WOKEN)
        return time.monotonic() + WAKE_GRACE_S

    def lock_key(self, phone: str) -> str:
        """The per-voter lock of a stored ``from_phone`` (the router's key for that contact)."""
        try:
            return contact_lock_key(self.phones.parse(phone).e164)
        except InvalidPhone:
            return contact_lock_key(phone)

    def waiting_phones(self, limit: int, *, offset: int = 0, older_than_s: float = 0.0) -> list[str]:
        """The senders of the oldest waiting messages, oldest first, each once."""
        stmt = select(TABLE.c.from_phone).where(TABLE.c.routed_at.is_(None)).order_by(TABLE.c.id)
        if older_than_s:
            stmt = stmt.where(TABLE.c.received_at <= utcnow() - dt.timedelta(seconds=older_than_s))
        with self.db.engine.connect() as conn:
            phones = conn.scalars(stmt.limit(limit).offset(offset)).all()
        return list(dict.fromkeys(phones))

    def has_waiting(self, provider_id: str) -> bool:
        """True while the message with this provider id is stored and not yet routed."""
        stmt = select(TABLE.c.id).where(TABLE.c.provider_id == provider_id, TABLE.c.routed_at.is_(None))
        with self.db.engine.connect() as conn:
            return conn.scalar(stmt) is not None

    def purge(self, older_than: dt.timedelta) -> int:
        """Delete rows routed longer ago than ``older_than`` (the messages table keeps them)."""
        with self.db.engine.begin() as conn:
            result = conn.execute(
                delete(TABLE).where(TABLE.c.routed_at.is_not(None), TABLE.c.routed_at < utcnow() - older_than)
            )
        return result.rowcount or 0


def claim(session: Session, phones: Iterable[str]) -> list[Row[Any]]:
    """Mark every waiting message of these senders routed, in ``session``'s transaction.

    The caller routes them in the same transaction: if it rolls back, the rows wait
    again; if another process claimed a row first, this one does not get it.
    """
    stmt = (
        update(TABLE)
        .where(TABLE.c.from_phone.in_(list(phones)), TABLE.c.routed_at.is_(None))
        .values(routed_at=utcnow())
        .returning(*TABLE.c)
    )
    return sorted(session.execute(stmt).all(), key=lambda row: row.id)


def record(session: Session, results: list[dict[str, Any]]) -> None:
    """Store each routed row's outcome and message id (``rid``, ``outcome``, ``mid``)."""
    if results:
        stmt = (
            update(TABLE)
            .where(TABLE.c.id == bindparam("rid"))
            .values(outcome=bindparam("outcome"), message_id=bindparam("mid"))
        )
        session.connection().execute(stmt, results)


def unclaim(session: Session, row_ids: list[int], *, failed: int | None = None) -> None:
    """Put claimed rows back to wait; ``failed`` counts an attempt (given up at ``MAX_ATTEMPTS``)."""
    if row_ids:
        session.execute(update(TABLE).where(TABLE.c.id.in_(row_ids)).values(routed_at=None))
    if failed is not None:
        give_up = TABLE.c.attempts + 1 >= MAX_ATTEMPTS
        session.execute(
            update(TABLE)
            .where(TABLE.c.id == failed)
            .values(
                attempts=TABLE.c.attempts + 1,
                routed_at=case((give_up, utcnow()), else_=None),
                outcome=case((give_up, "failed"), else_=None),
            )
        )


def inbound_of(row: Row[Any]) -> Inbound:
    """The message a stored row holds, as the provider parsed it."""
    return Inbound(
        provider_id=row.provider_id,
        channel=row.channel,
        from_phone=row.from_phone,
        to=row.to_address,
        text=row.body,
        media=tuple((str(url), str(kind)) for url, kind in row.media or []),
        profile_name=row.profile_name,
        button_payload=row.button_payload,
    )


class ContactLocks:
    """Per-voter locks, many taken in one round trip.

    The keys, values and release script are those of ``redis.lock.Lock``, so these and
    ``bot.router.redis_lock`` exclude each other.
    """

    def __init__(self, conn: redis.Redis, ttl_s: float = LOCK_TTL_S) -> None:
        self.redis = conn
        self.ttl_ms = int(ttl_s * 1000)
        self._release = conn.register_script(_RELEASE)

    @contextlib.contextmanager
    def holding(self, keys: list[str], *, wait_s: float = 0.0) -> Iterator[set[str]]:
        """Hold whichever of ``keys`` are free; with ``wait_s``, wait that long for the first.

        Raises:
            LockError: ``wait_s`` passed and the first key was still held by another process.
        """
        token = uuid.uuid4().hex.encode()
        held = self._take(keys, token)
        deadline = time.monotonic() + wait_s
        while wait_s and keys and keys[0] not in held:
            if time.monotonic() >= deadline:
                raise LockError(f"{keys[0]} is still held after {wait_s:g} s")
            time.sleep(0.01)
            held |= self._take(keys[:1], token)
        try:
            yield held
        finally:
            if held:
                pipe = self.redis.pipeline(transaction=False)
                for key in held:
                    self._release(keys=[key], args=[token], client=pipe)
                pipe.execute()

    def _take(self, keys: list[str], token: bytes) -> set[str]:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, token, nx=True, px=self.ttl_ms)
        return {key for key, ok in zip(keys, pipe.execute(), strict=True) if ok}


def inbox_for(rt: Runtime) -> Inbox:
    """The process's inbox, made on first use."""
    inbox = rt.services.get("inbox")
    if inbox is None:
        inbox = rt.services["inbox"] = Inbox(rt.db, rt.redis, region=rt.settings.default_region)
    return inbox  # type: ignore[no-any-return]
