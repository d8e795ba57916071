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
from typing import Any

from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.models import Message, advances
from campaigns import tracking
from campaigns.models import Campaign, CampaignStatus, Recipient
from ivr.models import FINAL_CALL_STATUSES, Call

UNANSWERED = ("busy", "no-answer", "failed", "canceled")


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
    if ended:
        _complete(db, campaign)
    return Followed(campaign, call.id, ended=ended)


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
    may_retry = recipient.attempts < int(options.get("attempts", 1)) and campaign.status in (
        CampaignStatus.ACTIVE,
        CampaignStatus.PAUSED,
    )
    if may_retry:
        retry_at = now + dt.timedelta(seconds=int(options.get("retry_after_s", 3600)))
        recipient.status, recipient.retry_at = "pending", retry_at
        recipient.error_code, recipient.error_msg = (
            code,
            f"call {code}; attempt {recipient.attempts + 1} at {retry_at:%H:%M} UTC",
        )
        return Followed(campaign, call.id, ended=True, retry_at=retry_at, batch=recipient.batch)
    tracking.follow(db, message)
    if recipient.status not in ("failed",) and recipient.message_id == message.id:
        # A reached-then-hung-up machine was delivered: the attempt's failure still speaks.
        recipient.status, recipient.failed_at = "failed", recipient.failed_at or now
    recipient.error_code, recipient.error_msg = code, f"call {code} after {recipient.attempts} attempts"
    _complete(db, campaign)
    return Followed(campaign, call.id, ended=True)


def _complete(db: Session, campaign: Campaign) -> None:
    from campaigns import operations

    db.flush()
    operations.complete_if_done(db, campaign.id)


def _machine_hung_up(call: Call) -> bool:
    return call.answered_by == "machine" and call.on_machine == "hangup"


def _move(message: Message, status: str, at: dt.datetime) -> None:
    if advances(message.status, status):
        message.status = status
        column = {"sent": "sent_at", "delivered": "delivered_at"}[status]
        if getattr(message, column) is None:
            setattr(message, column, at)


def after_commit(conn: Any, followed: Followed | None) -> None:
    """Free the ended call's slot and queue the retry (only once the transaction committed)."""
    if followed is None:
        return
    from campaigns import call_dispatch, operations

    if followed.ended:
        call_dispatch.live_calls(conn, followed.campaign).give_back(followed.call_id)
    if followed.retry_at is not None and followed.batch is not None:
        operations.requeue_at(conn, followed.campaign, followed.batch, followed.retry_at)
