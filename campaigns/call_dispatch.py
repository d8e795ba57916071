"""Placing a call campaign's calls: the voice provider, the live-call limit, one placement.

The batch sender (``campaigns.dispatch``) sends a call campaign like any other, with three
differences that live here: the provider is a voice provider (``ivr.providers``); each
placement first takes one of the campaign's live-call slots (``voice.max_concurrent``),
given back when the call ends (``campaigns.call_tracking``); and the provider gets our
voice webhook and status callback URLs, which carry the call's signed reference. Calls per
second are the batch sender's paces (the campaign's and the sender's), as for messages.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select

from bot.channels import SendError
from bot.models import Sender
from bot.outbox import NoProvider
from bot.runtime import Runtime
from bot.settings import Settings
from campaigns.claims import Claimed, Outcome
from campaigns.models import Campaign
from ivr import placing
from ivr.links import CallLinks
from ivr.models import Call
from ivr.providers.base import CallRequest, VoiceProvider

log = logging.getLogger(__name__)
# A slot whose call never reported its end (a lost callback) is taken back after this long.
SLOT_TTL_S = 2 * 3600

# KEYS: the campaign's live calls (a sorted set: call id -> expiry). ARGV: now, limit, call id, expiry.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('EXPIRE', KEYS[1], 86400)
return 1
"""


class LiveCalls:
    """A campaign's calls in progress, counted in Redis across every worker."""

    def __init__(self, conn: Any, campaign_id: int, limit: int) -> None:
        self.conn = conn
        self.key = f"canvass:campaign:{campaign_id}:live-calls"
        self.limit = max(1, int(limit))

    def free(self) -> int:
        """Slots free now."""
        self.conn.zremrangebyscore(self.key, "-inf", time.time())
        return max(0, self.limit - int(self.conn.zcard(self.key)))

    def take(self, call_id: int) -> bool:
        """Take a slot for ``call_id``; False when the campaign has ``limit`` calls live."""
        now = time.time()
        return bool(self.conn.eval(_TAKE, 1, self.key, now, self.limit, call_id, now + SLOT_TTL_S))

    def give_back(self, call_id: int) -> None:
        """The call ended: its slot is free."""
        self.conn.zrem(self.key, call_id)


def live_calls(conn: Any, campaign: Campaign) -> LiveCalls:
    """The live-call slots of ``campaign``."""
    return LiveCalls(conn, campaign.id, int((campaign.voice or {}).get("max_concurrent", 10)))


def place(
    provider: VoiceProvider, settings: Settings, campaign: Campaign, sender: Sender, item: Claimed, slots: LiveCalls
) -> Outcome:
    """Place one claimed call; ``not_sent`` when no live-call slot is free (it goes back to pending)."""
    assert item.call_id is not None
    if not slots.take(item.call_id):
        return Outcome(item, "not_sent")
    options = campaign.voice or {}
    links = CallLinks.of(settings)
    detect = None
    if options.get("machine_detection"):
        # To leave a message, wait for the greeting's end (the beep); else know as soon as possible.
        detect = "DetectMessageEnd" if options.get("on_machine") == "message" else "Enable"
    request = CallRequest(
        to=item.to,
        from_=sender.address,
        answer_url=links.answer(item.call_id),
        status_callback=links.status(item.call_id),
        ring_timeout_s=int(options.get("ring_timeout_s", 30)),
        machine_detection=detect,
    )
    try:
        placed = provider.place(request)
    except SendError:
        slots.give_back(item.call_id)
        raise
    return Outcome(item, "sent", provider_id=placed.sid)


def hang_up_ringing(rt: Runtime, campaign_id: int) -> int:
    """An aborted call campaign: hang up its calls still ringing (answered ones finish their flow)."""
    with rt.db.session() as db:
        rows = db.execute(
            select(Call.sid, Sender)
            .join(Sender, Sender.id == Call.sender_id)
            .where(Call.campaign_id == campaign_id, Call.status.in_(("queued", "ringing")), Call.sid.is_not(None))
        ).all()
        db.expunge_all()
    hung = 0
    for sid, sender in rows:
        try:
            placing.provider_for(rt.settings, sender).cancel(sid)
            hung += 1
        except (SendError, NoProvider) as exc:
            log.warning("campaign %s: call %s could not be hung up (%s)", campaign_id, sid, exc)
    return hung
