"""Conversations in one place for hosts (webhooks, CLI, scheduler): route, commit, queue.

Twilio's webhook only stores a message (``accept``) and answers; ``drain_inbound``, in a
worker, routes the stored messages in batches: it claims every waiting message of a
batch of voters in one transaction, under those voters' locks, routes each voter's in
the order they arrived, commits once and queues all the replies in one round trip.
Consent keywords do not wait for it: ``accept`` routes them (and anything the voter
sent before them) inside the request.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import inbox as inbound_queue
from bot.channels.base import Inbound
from bot.db import utcnow
from bot.inbox import LOCK_TTL_S, inbox_for
from bot.keywords import classify
from bot.models import FlowSession, Message, Sender
from bot.outbox import queue_sends
from bot.router import Routed, Router, contact_lock_key, redis_lock
from bot.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 200
# Voters (and so transactions) per drain step: big enough to pay the round trips of
# the locks, the claim and the enqueue once for many messages, small enough that a
# voter's consent keyword never waits long behind a batch holding their lock.
DRAIN_VOTERS = 50
# A drain job then hands over to a new one at the back of the queue, so that the
# replies it queued meanwhile (same queue, first in first out) go out first: with
# drains on every worker, a reply waits about this long for one to be free (at 1 s,
# the benchmark's replies at 100 messages/s waited ~0.9 s; at 0.25 s, ~0.3 s).
DRAIN_MAX_S = 0.25
SWEEP_AFTER_S = 10.0  # the scheduler routes messages that waited this long (their wake-up was lost)


def action_bridge(rt: Runtime):  # type: ignore[no-untyped-def]
    """The process's action bridge (CANVASS_ACTIONS wins over RASA_ACTION_ENDPOINT), made once."""
    if "actions" in rt.services:
        return rt.services["actions"]
    bridge = None
    if rt.settings.actions_package:
        from bot.rasa_bridge import ActionRunner

        bridge = ActionRunner(rt.settings.actions_package)
    elif rt.settings.rasa_action_endpoint:
        from bot.rasa_bridge import RemoteActionRunner

        bridge = RemoteActionRunner(rt.settings.rasa_action_endpoint)
    rt.services["actions"] = bridge
    return bridge


def receive(
    rt: Runtime, inbound: Inbound, sender_id: int | None = None, *, provider: str = "twilio"
) -> tuple[Routed, list[Message]]:
    """Route an inbound message now, commit, then queue the replies; return them too.

    The synchronous path, for the sandbox (CLI and console), which show the bot's answer
    at once; Twilio's webhook stores messages for ``drain_inbound`` instead (``accept``).
    Without ``sender_id`` the sender is the one the message was sent to (``inbound.to``),
    remembered as a new ``provider`` sender the first time: the provider only delivers
    messages for numbers of our account. The voter's lock is held until the replies are
    queued, so a second message of the same voter sees this one's outcome.
    """
    phone = inbox_for(rt).phones.parse(inbound.from_phone).e164
    with redis_lock(rt.redis, contact_lock_key(phone)):
        # write=True: on SQLite the write lock is taken at the start, so a reply that lands
        # while a campaign batch stores its sends waits instead of failing "database is
        # locked" (a deferred transaction cannot take the write lock once another commits).
        with rt.db.session(write=True) as db:
            sender = db.get(Sender, sender_id) if sender_id is not None else _sender_for(db, inbound, provider)
            assert sender is not None
            router = Router(db, region=rt.settings.default_region, actions=action_bridge(rt))
            routed = router.receive(inbound, sender)
            replies = sorted(routed.messages, key=lambda m: m.id)
        queue_sends(rt.redis, routed.outbound)
    return routed, replies


def _sender_for(db: Session, inbound: Inbound, provider: str) -> Sender:
    stmt = select(Sender).where(Sender.channel == inbound.channel, Sender.address == inbound.to)
    sender = db.scalar(stmt)
    if sender is None:
        try:
            with db.begin_nested():
                sender = Sender(
                    provider=provider,
                    channel=inbound.channel,
                    address=inbound.to,
                    name="added on first message",
                    healthy=True,
                )
                db.add(sender)
        except IntegrityError:
            # Another process remembered the number at the same moment: use theirs.
            sender = db.scalar(stmt)
            assert sender is not None
    return sender


def fire_due_timeouts(rt: Runtime) -> int:
    """Resume every waiting session whose timeout is due (the scheduler calls this)."""
    lock = functools.partial(redis_lock, rt.redis)
    fired = 0
    with rt.db.session() as db:
        due = list(
            db.scalars(
                select(FlowSession.id)
                .where(FlowSession.status == "waiting", FlowSession.timeout_at <= utcnow())
                .order_by(FlowSession.timeout_at)
                .limit(BATCH)
            )
        )
    for session_id in due:
        with rt.db.session(write=True) as db:  # reads, then writes (see receive)
            fs = db.get(FlowSession, session_id)
            if fs is None:
                continue
            router = Router(db, region=rt.settings.default_region, actions=action_bridge(rt), lock=lock)
            routed = router.fire_timeout(fs)
        queue_sends(rt.redis, routed.outbound)
        fired += routed.outcome == "timed_out"
    return fired


def accept(rt: Runtime, inbound: Inbound, *, provider: str = "twilio") -> str:
    """Store a webhook's message for the drain; apply a consent keyword at once.

    Returns what happened: ``queued`` (the drain will route it), ``routed`` (a STOP,
    START or HELP: routed before returning, after anything the voter sent earlier that
    was still waiting, so their messages keep their order) or ``duplicate`` (its
    provider id was stored before: nothing is stored or routed twice).
    """
    inbox = inbox_for(rt)
    stored = inbox.store(inbound, provider)
    if is_consent_keyword(inbound):
        # Consent never waits on a queue. A duplicate is routed too: an earlier
        # delivery may have been stored and then failed before it was applied.
        route_waiting(rt, [inbound.from_phone], wait_s=LOCK_TTL_S)
        if inbox.has_waiting(inbound.provider_id):
            inbox.wake(inbound.provider_id)  # routing it failed: the drain retries it soon
        return "routed" if stored else "duplicate"
    if stored:
        inbox.nudge(inbound.provider_id)
        return "queued"
    # A duplicate always asks Redis: Redis may have lost the first delivery's wake-up
    # (retries are rare, so this costs the common path nothing).
    inbox.wake(inbound.provider_id)
    return "duplicate"


def is_consent_keyword(inbound: Inbound) -> bool:
    """True for STOP, START, HELP and the like: ``accept`` routes these inside the request."""
    return classify(inbound.text) is not None


def drain_inbound(rt: Runtime, *, max_s: float = DRAIN_MAX_S, older_than_s: float = 0.0) -> int:
    """Route the waiting inbound messages, oldest first, for up to ``max_s``; return how many.

    Several drains may run at once: each takes the voters whose locks are free, so
    they share the work, and a message is routed once (it is claimed in the database).
    With ``older_than_s`` (the scheduler's sweep) only messages that waited that long
    start a batch, and what is left at the deadline is left to the next sweep.
    """
    inbox = inbox_for(rt)
    deadline = time.monotonic() + max_s
    total = 0
    # Before looking for work: a message stored from now on wakes the next drain. Until
    # ``look_until``, a webhook that knew of this drain may have stored one without
    # waking another (``Inbox.nudge``): this drain looks once more then.
    look_until = inbox.rest() if not older_than_s else 0.0
    while True:
        phones = inbox.waiting_phones(DRAIN_VOTERS, older_than_s=older_than_s)
        if not phones:
            pause = look_until - time.monotonic()
            if pause <= 0:
                return total
            time.sleep(pause)
            continue
        if time.monotonic() >= deadline:
            if not older_than_s:
                inbox.wake(f"more-{total}-{time.time_ns()}")
            return total
        routed = route_waiting(rt, phones)
        for offset in (DRAIN_VOTERS, 2 * DRAIN_VOTERS):
            if routed:
                break
            # Another drain holds these voters: take the next ones rather than wait.
            further = inbox.waiting_phones(DRAIN_VOTERS, offset=offset, older_than_s=older_than_s)
            routed = route_waiting(rt, further) if further else 0
        if not routed:
            routed = route_waiting(rt, phones[:1], wait_s=LOCK_TTL_S)
        total += routed


def sweep_inbound(rt: Runtime) -> int:
    """Route messages whose drain never came (Redis flushed or a worker died): the scheduler's task."""
    return drain_inbound(rt, max_s=2.0, older_than_s=SWEEP_AFTER_S)


def route_waiting(rt: Runtime, phones: list[str], *, wait_s: float = 0.0) -> int:
    """Route every waiting message of these senders whose lock is free; return how many.

    One transaction claims and routes them all, each voter's in arrival order; the
    replies are queued after the commit and before the locks are released, so a
    voter's next message is routed only after this one's replies are on their way.
    With ``wait_s`` the first sender's lock is waited for (``LockError`` after that).
    """
    inbox = inbox_for(rt)
    keys: dict[str, list[str]] = {}  # one voter may have written as "+91..." and as "91..."
    for phone in phones:
        keys.setdefault(inbox.lock_key(phone), []).append(phone)
    with inbox.locks.holding(list(keys), wait_s=wait_s) as held:
        if not held:
            return 0
        with rt.db.session() as db:
            rows = inbound_queue.claim(db, [phone for key in held for phone in keys[key]])
            outbound = _route_rows(rt, db, rows)
        queue_sends(rt.redis, outbound)
    return len(rows)


def _route_rows(rt: Runtime, db: Session, rows: list[Any]) -> list[int]:
    router = Router(db, region=rt.settings.default_region, actions=action_bridge(rt))
    senders: dict[tuple[str, str], Sender] = {}
    outbound: list[int] = []
    results: list[dict[str, Any]] = []
    stopped: dict[str, list[int]] = {}  # sender phone -> rows put back behind a failed one
    for row in rows:
        if row.from_phone in stopped:
            stopped[row.from_phone].append(row.id)
            continue
        inbound = inbound_queue.inbound_of(row)
        try:
            # A savepoint per message: one voter's message that breaks the router must
            # not hold up the other voters of the batch (it is retried, then given up).
            with db.begin_nested():
                key = (inbound.channel, inbound.to)
                if key not in senders:
                    senders[key] = _sender_for(db, inbound, row.provider)
                routed = router.receive(inbound, senders[key], received_at=row.received_at)
        except Exception:
            log.exception(
                "inbound %s (row %s) could not be routed (attempt %d)", row.provider_id, row.id, row.attempts + 1
            )
            senders.clear()  # objects of the rolled-back savepoint may be gone
            stopped[row.from_phone] = []
            inbound_queue.unclaim(db, [], failed=row.id)
            continue
        results.append({"rid": row.id, "outcome": routed.outcome, "mid": routed.message_id or None})
        outbound.extend(routed.outbound)
    for later in stopped.values():
        inbound_queue.unclaim(db, later)  # the voter's later messages wait for the failed one
    inbound_queue.record(db, results)
    return outbound
