"""Conversations in one place for hosts (webhooks, CLI, scheduler): route, commit, queue."""

from __future__ import annotations

import functools

from sqlalchemy import select

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


def receive(rt: Runtime, inbound: Inbound, sender_id: int) -> tuple[Routed, list[Message]]:
    """Route an inbound message, commit, then queue the replies; return them too."""
    lock = functools.partial(redis_lock, rt.redis)
    with rt.db.session() as db:
        sender = db.get(Sender, sender_id)
        assert sender is not None
        routed = Router(db, region=rt.settings.default_region, actions=_actions(rt), lock=lock).receive(inbound, sender)
        replies = list(db.scalars(select(Message).where(Message.id.in_(routed.outbound)).order_by(Message.id)))
    queue_sends(rt.redis, routed.outbound)
    return routed, replies


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
        with rt.db.session() as db:
            fs = db.get(FlowSession, session_id)
            if fs is None:
                continue
            routed = Router(db, region=rt.settings.default_region, actions=_actions(rt), lock=lock).fire_timeout(fs)
        queue_sends(rt.redis, routed.outbound)
        fired += routed.outcome == "timed_out"
    return fired
