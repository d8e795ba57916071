"""A campaign call's progress, followed onto its recipient: answered, or tried again later.

``ivr.calls.CallDesk`` moves the ``Call`` (answer webhook, status callbacks); this copies
the move onto the attempt's message and the recipient, as ``campaigns.tracking`` does for
messages: a placed call is ``sent``, an answered one ``delivered``. A call nobody took
(busy, no answer, failed — or an answering machine, when the campaign hangs up on those)
is tried again ``voice.retry_after_s`` later, up to ``voice.attempts`` calls: the recipient
goes back to ``pending`` with a ``retry_at``, and its batch is queued for then (inside the
call window: the claim defers a voter outside it). After the last attempt the recipient is
``failed`` with the call's status as its error code, which a fallback step (SMS, WhatsApp)
picks up like any failed message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.models import Message, advances
from bot.runtime import Runtime
from campaigns import tracking, voice_options
from campaigns.models import Campaign, CampaignStatus, Recipient
from ivr.models import FINAL_CALL_STATUSES, Call


@dataclasses.dataclass(frozen=True)
class Followed:
    """What the caller does once the transaction commits."""

    campaign: Campaign  # still readable after the commit (sessions do not expire on commit)
    call_id: int
    # The call is over: its live-call slot is free.
    ended: bool = False
    # The voter is called again then (their batch must be queued for it).
    retry_at: dt.datetime | None = None
    batch: int | None = None
    # The campaign may be complete now (checked after the commit: locking the campaign row
    # here, after the call, message and recipient, would deadlock with an abort).
    complete: bool = False


def follow(db: Session, call: Call, now: dt.datetime | None = None) -> Followed | None:
    """Copy ``call``'s state onto its attempt message and recipient (a campaign call only)."""
    if call.campaign_id is None or call.message_id is None or call.recipient_id is None:
        return None
    now = now or utcnow()
    message = db.get(Message, call.message_id, with_for_update=True)
    recipient = db.get(Recipient, call.recipient_id, with_for_update=True)
    campaign = db.get(Campaign, call.campaign_id)
    if message is None or recipient is None or campaign is None:
        return None
    ended = call.status in FINAL_CALL_STATUSES
    if call.session_id and recipient.message_id == message.id:
        recipient.session_id = call.session_id  # replied_at and completed_at come from it
    reached = call.answered_at is not None and not _machine_hung_up(call)
    if call.status in ("queued", "ringing"):
        _move(message, "sent", now)
    elif reached:
        _move(message, "sent", now)
        _move(message, "delivered", call.answered_at or now)
    elif ended:
        code = "machine" if _machine_hung_up(call) else call.status
        if call.status == "completed" and call.answered_at is None:
            code = "no-answer"
        return _unanswered(db, campaign, call, message, recipient, code, now)
    tracking.follow(db, message)
    return Followed(campaign, call.id, ended=ended, complete=ended)


def _unanswered(
    db: Session, campaign: Campaign, call: Call, message: Message, recipient: Recipient, code: str, now: dt.datetime
) -> Followed:
    _move(message, "sent", now)
    if advances(message.status, "failed") or message.status == "delivered":
        message.status, message.failed_at = "failed", now
        message.error_code, message.error_message = code, f"call {code}"
    if recipient.message_id != message.id:
        return Followed(campaign, call.id, ended=True)  # an older attempt: the recipient moved on
    options = campaign.voice or {}
    # Calls that rang (or were refused by the network) count; a placement Twilio refused with
    # a 429 is not a call the voter missed.
    placed = db.scalar(
        select(func.count()).select_from(Call).where(Call.recipient_id == recipient.id, Call.sid.is_not(None))
    )
    limit = int(options.get("attempts", voice_options.DEFAULTS["attempts"]))
    may_retry = (placed or 0) < limit and campaign.status in (
        CampaignStatus.ACTIVE,
        CampaignStatus.PAUSED,
    )
    if may_retry:
        retry_at = now + dt.timedelta(seconds=int(options.get("retry_after_s", 3600)))
        recipient.status, recipient.retry_at = "pending", retry_at
        recipient.error_code, recipient.error_msg = (
            code,
            f"call {code}; call {(placed or 0) + 1} at {retry_at:%H:%M} UTC",
        )
        return Followed(campaign, call.id, ended=True, retry_at=retry_at, batch=recipient.batch)
    tracking.follow(db, message)
    if recipient.status not in ("failed",) and recipient.message_id == message.id:
        # A reached-then-hung-up machine was delivered: the attempt's failure still speaks.
        recipient.status, recipient.failed_at = "failed", recipient.failed_at or now
    recipient.error_code, recipient.error_msg = code, f"call {code} after {placed} calls"
    return Followed(campaign, call.id, ended=True, complete=True)


def wanted(db: Session, call: Call) -> bool:
    """Whether a call is still wanted when the voter answers: not once its campaign was aborted or ended."""
    if call.campaign_id is None:
        return True
    status = db.scalar(select(Campaign.status).where(Campaign.id == call.campaign_id))
    return status not in (CampaignStatus.ABORTED, CampaignStatus.ENDED)


def _machine_hung_up(call: Call) -> bool:
    return call.answered_by == "machine" and call.on_machine == "hangup"


def _move(message: Message, status: str, at: dt.datetime) -> None:
    if advances(message.status, status):
        message.status = status
        column = {"sent": "sent_at", "delivered": "delivered_at"}[status]
        if getattr(message, column) is None:
            setattr(message, column, at)


def after_commit(rt: Runtime, followed: Followed | None) -> None:
    """Free the ended call's slot, queue the retry, complete the campaign — once the transaction committed."""
    if followed is None:
        return
    from campaigns import call_dispatch, operations, planner

    if followed.ended:
        call_dispatch.live_calls(rt.redis, followed.campaign).give_back(followed.call_id)
    if followed.retry_at is not None and followed.batch is not None:
        planner.requeue_at(rt.redis, followed.campaign, followed.batch, followed.retry_at)
    if followed.complete:
        with rt.db.session(write=True) as db:
            operations.complete_if_done(db, followed.campaign.id)
