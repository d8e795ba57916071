"""A missed-call line: the call is rejected (free for the voter) and its flow starts another way.

``CallDesk`` rejects the call; ``follow_up`` then starts the line's ``missed_call_flow``
by SMS or WhatsApp (``bot.router``), or queues a call back on a healthy voice sender —
at most once every ``MISSED_CALL_EVERY`` per voter, since a caller ID can be forged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.flowhost import ActionBridge
from bot.flowlibrary import FlowLibrary
from bot.models import ConsentStatus, Contact, Sender
from bot.router import Router
from ivr.models import Call, VoiceLine

if TYPE_CHECKING:
    from ivr.calls import Answered

log = logging.getLogger(__name__)
# A voter's missed calls start their line's flow at most this often.
MISSED_CALL_EVERY = dt.timedelta(minutes=10)


def follow_up(
    db: Session,
    answered: Answered,
    call: Call,
    contact: Contact,
    line: VoiceLine,
    *,
    region: str,
    actions: ActionBridge | None,
    now: Callable[[], dt.datetime],
) -> Answered:
    """Start the line's flow for the voter of a rejected missed ``call``; returns ``answered`` with the follow-ups."""
    if _missed_lately(db, call, now()):
        # A caller ID can be forged: missed calls must not become a way to text or call someone again and again.
        log.warning("missed call on %s from contact %s: answered once already lately", line.address, contact.id)
        return answered
    channel = line.missed_call_channel or "sms"
    if channel == "voice":
        return dataclasses.replace(answered, callbacks=_call_back(db, contact, line, now()))
    found = FlowLibrary(db).get(line.missed_call_flow or "")
    sender = db.scalar(select(Sender).where(Sender.channel == channel, Sender.healthy.is_(True)).order_by(Sender.id))
    if found is None or sender is None or channel not in found[0].channels:
        log.error(
            "missed call on %s: flow %r on %s cannot start (no such flow, no healthy sender, or not a %s flow)",
            line.address,
            line.missed_call_flow,
            channel,
            channel,
        )
        return answered
    routed = Router(db, region=region, actions=actions, now=now).start_flow(found, contact, sender, channel)
    return dataclasses.replace(answered, outbound=routed.outbound)


def _missed_lately(db: Session, call: Call, now: dt.datetime) -> bool:
    """True when another missed call of this voter was taken within ``MISSED_CALL_EVERY``."""
    return bool(
        db.scalar(
            select(Call.id)
            .where(Call.contact_id == call.contact_id, Call.direction == "inbound", Call.status == "canceled")
            .where(Call.id != call.id, Call.created_at >= now - MISSED_CALL_EVERY)
            .limit(1)
        )
    )


def _call_back(db: Session, contact: Contact, line: VoiceLine, now: dt.datetime) -> list[int]:
    """Queue a call to the voter from a healthy voice sender, running the line's missed-call flow."""
    sender = db.scalar(select(Sender).where(Sender.channel == "voice", Sender.healthy.is_(True)).order_by(Sender.id))
    if sender is None or contact.consent == ConsentStatus.OPTED_OUT:
        log.error("missed call on %s: no call-back (no healthy voice sender, or the voter opted out)", line.address)
        return []
    back = Call(
        contact_id=contact.id,
        sender_id=sender.id,
        direction="outbound",
        flow_name=line.missed_call_flow,
        status="queued",
        created_at=now,
    )
    db.add(back)
    db.flush()
    return [back.id]
