"""Conversations in one place for hosts (webhooks, CLI, scheduler): route, commit, queue."""

from __future__ import annotations

import functools

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels.base import Inbound
from bot.db import utcnow
from bot.models import FlowSession, Message, Sender
from bot.outbox import queue_sends
from bot.router import Routed, Router, redis_lock
from bot.runtime import Runtime

BATCH = 200


def _actions(rt: Runtime):  # type: ignore[no-untyped-def]
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
    """Route an inbound message, commit, then queue the replies; return them too.

    Without ``sender_id`` the sender is the one the message was sent to (``inbound.to``),
    remembered as a new ``provider`` sender the first time: the provider only delivers
    messages for numbers of our account. One transaction does it all.
    """
    lock = functools.partial(redis_lock, rt.redis)
    # write=True: on SQLite the write lock comes first (then the per-contact lock), so a reply
    # that lands while a campaign batch stores its sends waits instead of failing "database
    # is locked" (a deferred transaction cannot take the write lock once another commits).
    with rt.db.session(write=True) as db:
        sender = db.get(Sender, sender_id) if sender_id is not None else _sender_for(db, inbound, provider)
        assert sender is not None
        router = Router(db, region=rt.settings.default_region, actions=_actions(rt), lock=lock)
        routed = router.receive(inbound, sender)
        replies = sorted(routed.messages, key=lambda m: m.id)
    queue_sends(rt.redis, routed.outbound)
    return routed, replies


def _sender_for(db: Session, inbound: Inbound, provider: str) -> Sender:
    sender = db.scalar(select(Sender).where(Sender.channel == inbound.channel, Sender.address == inbound.to))
    if sender is None:
        sender = Sender(
            provider=provider, channel=inbound.channel, address=inbound.to, name="added on first message", healthy=True
        )
        db.add(sender)
        db.flush()
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
            routed = Router(db, region=rt.settings.default_region, actions=_actions(rt), lock=lock).fire_timeout(fs)
        queue_sends(rt.redis, routed.outbound)
        fired += routed.outcome == "timed_out"
    return fired
