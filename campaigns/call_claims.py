"""A call campaign's attempts: the rows a claimed voter's call needs, and what placing it said.

A call attempt is stored like a message attempt, so that claiming, settling, releasing
and the reconciler work unchanged: an opening ``Message`` (channel ``voice``, status
``sending``; its provider id becomes the call SID) that the recipient follows, plus the
``Call`` itself, which carries the flow to run when the voter answers and the campaign's
voice options (opt-out key, what to do with an answering machine). No flow session is
made yet: it starts when the voter picks up (``ivr.calls.CallDesk``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from bot.engine import Flow
from campaigns.claims import Claimed, M, Outcome, R, Ready, Step, take
from campaigns.models import Campaign
from ivr.models import Call

C = Call.__table__
CALL_BODY = "Call"


def prepare_calls(
    db: Session, campaign: Campaign, step: Step, flow: Flow, ready: Sequence[Ready], now: dt.datetime
) -> list[Claimed]:
    """Claim the ``ready`` rows; store the attempt message and the call of each; a statement per table."""
    ready = take(db, ready, now)
    if not ready:
        return []
    options = campaign.voice or {}
    message_ids = list(
        db.scalars(
            insert(M).returning(M.c.id, sort_by_parameter_order=True),
            [
                {
                    "contact_id": contact.id,
                    "sender_id": step.sender.id,
                    "campaign_id": campaign.id,
                    "recipient_id": rid,
                    "direction": "out",
                    "purpose": "campaign",
                    "channel": "voice",
                    "body": CALL_BODY,
                    "media": [],
                    "choices": [],
                    "status": "sending",
                    "attempts": 1,
                    "created_at": now,
                }
                for rid, contact, _, _ in ready
            ],
        )
    )
    db.execute(
        update(R).where(R.c.id == bindparam("rid")).values(message_id=bindparam("mid"), session_id=None, retry_at=None),
        [{"rid": rid, "mid": mid} for (rid, _, _, _), mid in zip(ready, message_ids, strict=True)],
    )
    # The claim counted this attempt already: the call says which one it is.
    attempts = dict(db.execute(select(R.c.id, R.c.attempts).where(R.c.id.in_([r[0] for r in ready]))).all())
    call_ids = list(
        db.scalars(
            insert(C).returning(C.c.id, sort_by_parameter_order=True),
            [
                {
                    "contact_id": contact.id,
                    "sender_id": step.sender.id,
                    "campaign_id": campaign.id,
                    "recipient_id": rid,
                    "message_id": mid,
                    "direction": "outbound",
                    "flow_name": flow.name,
                    "flow_version": campaign.flow_version,
                    "status": "queued",
                    "attempt": attempts.get(rid, 1),
                    "opt_out_digit": options.get("opt_out_digit"),
                    "on_machine": None
                    if options.get("on_machine", "continue") == "continue"
                    else options["on_machine"],
                    "machine_message": options.get("machine_message"),
                    "step": 0,
                    "created_at": now,
                }
                for (rid, contact, _, _), mid in zip(ready, message_ids, strict=True)
            ],
        )
    )
    db.execute(
        update(R).where(R.c.id == bindparam("rid")).values(call_id=bindparam("cid")),
        [{"rid": rid, "cid": cid} for (rid, _, _, _), cid in zip(ready, call_ids, strict=True)],
    )
    return [
        Claimed(rid, mid, None, contact.id, contact.phone, CALL_BODY, (), {}, validity, call_id=cid, claimed_at=now)
        for (rid, contact, _, validity), mid, cid in zip(ready, message_ids, call_ids, strict=True)
    ]


def settle_calls(db: Session, outcomes: Sequence[Outcome], now: dt.datetime) -> None:
    """Give each placed call its SID, and mark the calls that could not be placed as failed.

    The attempt messages and recipients are settled by ``campaigns.settlement.settle``; a
    status callback may have moved the call on already, so only a queued call changes.
    """
    placed = [
        {"cid": o.claimed.call_id, "sid": o.provider_id}
        for o in outcomes
        if o.claimed.call_id and o.status in ("sent", "delivered") and o.provider_id
    ]
    if placed:
        db.execute(update(C).where(C.c.id == bindparam("cid"), C.c.sid.is_(None)).values(sid=bindparam("sid")), placed)
    failed = [
        {"cid": o.claimed.call_id, "code": o.error_code, "msg": (o.error_msg or "")[:500], "at": now}
        for o in outcomes
        if o.claimed.call_id and o.status in ("failed", "retry")
    ]
    if failed:
        db.execute(
            update(C)
            .where(C.c.id == bindparam("cid"), C.c.status == "queued")
            .values(
                status="failed", error_code=bindparam("code"), error_message=bindparam("msg"), ended_at=bindparam("at")
            ),
            failed,
        )
