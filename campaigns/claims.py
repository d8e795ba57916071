"""Claiming recipients for sending, and settling what the provider said.

A batch job claims a handful of ``pending`` rows at a time with a conditional UPDATE
(``pending -> sending``), so two jobs working on one batch never both send to a voter.
In the same transaction it checks consent at send time, renders the template, stores the
opening message (status ``sending``) and parks the voter's session at the flow's start
(the template stands in for its first prompt). Only then does it call the provider: a
row left ``sending`` by a worker that died is never sent again — the reconciler makes it
``unknown`` and the status callback, which carries the message id, settles it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from bot.engine import Flow, start
from bot.engine.events import FunnelReached
from bot.models import ConsentStatus, Contact, FlowSession, FunnelEvent, Message, MessageStatusEvent, Sender
from bot.router import contact_view
from bot.sendwindows import Policy
from campaigns import templates, variables
from campaigns.compliance import FALLBACK_ZONE
from campaigns.models import Campaign, Recipient, RecipientStatus, SkipCode, TemplateVersion

R = Recipient.__table__
M = Message.__table__
S = FlowSession.__table__


@dataclasses.dataclass(frozen=True)
class Step:
    """What one attempt sends: the channel, the sender, the template version and its bindings.

    The first attempt is the campaign's own; a fallback (WhatsApp failed -> SMS) is another.
    """

    channel: str
    sender: Sender
    version: TemplateVersion
    bindings: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Claimed:
    """One recipient ready to send: everything the provider call needs."""

    recipient_id: int
    message_id: int
    session_id: int | None
    contact_id: int
    to: str
    text: str
    choices: tuple[tuple[str, str], ...]
    content_variables: dict[str, str]
    # Seconds the provider may keep trying (SMS): never past the end of the voter's window.
    validity_s: int | None = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one send."""

    claimed: Claimed
    status: str  # sent, delivered, unknown, failed, retry, not_sent
    provider_id: str | None = None
    error_code: str | None = None
    error_msg: str | None = None


def next_pending(db: Session, campaign_id: int, batch: int, limit: int, exclude: set[int]) -> list[int]:
    """Ids of the batch's next pending rows (those retried in this run left out)."""
    stmt = (
        select(Recipient.id)
        .where(Recipient.campaign_id == campaign_id, Recipient.batch == batch, Recipient.status == "pending")
        .order_by(Recipient.id)
        .limit(limit + len(exclude))
    )
    return [rid for rid in db.scalars(stmt) if rid not in exclude][:limit]


def claim(
    db: Session,
    campaign: Campaign,
    step: Step,
    flow: Flow,
    ids: Sequence[int],
    now: dt.datetime,
    policy: Policy | None = None,
) -> tuple[list[Claimed], dict[int, dt.datetime]]:
    """Move ``ids`` from pending to sending and prepare their messages.

    Returns the rows won, and the rows whose voter may not be sent now (a send window or
    a blackout), with the moment they may: those are back to ``pending``, untouched.
    """
    policy = policy or Policy()
    won = list(
        db.scalars(
            update(Recipient)
            .where(Recipient.id.in_(ids), Recipient.status == "pending")
            .values(status="sending", sending_at=now, attempts=Recipient.attempts + 1)
            .returning(Recipient.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not won:
        return [], {}
    rows = db.execute(select(Recipient.id, Recipient.contact_id).where(Recipient.id.in_(won))).all()
    contacts = {
        c.id: c
        for c in db.scalars(
            select(Contact).options(selectinload(Contact.tags)).where(Contact.id.in_([cid for _, cid in rows]))
        )
    }
    values = variables.Values(db, variables.parse(step.bindings), contacts.values())
    ready: list[tuple[int, Contact, dict[str, str], int | None]] = []
    skipped: list[dict[str, Any]] = []
    deferred: dict[int, dt.datetime] = {}
    for rid, cid in sorted(rows):
        contact = contacts[cid]
        zone, tags = contact.timezone or FALLBACK_ZONE, {t.name: t.value for t in contact.tags}
        allowed_at = policy.next_allowed(now, zone, tags)
        if allowed_at > now:
            deferred[rid] = allowed_at
            continue
        bound = values.for_contact(cid)
        if contact.consent == ConsentStatus.OPTED_OUT or bound is None:
            # Consent (and the voter's data) are checked again at send time: a voter who
            # opted out since the launch is not sent the campaign.
            code = SkipCode.OPTED_OUT if contact.consent == ConsentStatus.OPTED_OUT else SkipCode.MISSING_VARIABLE
            skipped.append({"rid": rid, "code": code.value})
            continue
        until = policy.open_until(now, zone, tags)
        validity = max(1, int((until - now).total_seconds())) if until is not None else None
        ready.append((rid, contact, bound, validity))
    out = _prepare(db, campaign, step, flow, ready, now)
    if skipped:
        db.execute(
            update(R)
            .where(R.c.id == bindparam("rid"))
            .values(status=RecipientStatus.SKIPPED.value, skip_code=bindparam("code"), batch=None),
            skipped,
        )
    if deferred:
        db.execute(
            update(Recipient)
            .where(Recipient.id.in_(list(deferred)), Recipient.status == "sending")
            .values(status="pending", sending_at=None, attempts=Recipient.attempts - 1)
            .execution_options(synchronize_session=False)
        )
    return out, deferred


def _prepare(
    db: Session,
    campaign: Campaign,
    step: Step,
    flow: Flow,
    ready: Sequence[tuple[int, Contact, dict[str, str], int | None]],
    now: dt.datetime,
) -> list[Claimed]:
    """Store the opening messages and the parked sessions of ``ready`` rows, in a few statements.

    A statement per table for the whole chunk (not per voter): at a few hundred sends a
    second, per-row round trips to the database were the batch's main cost.
    """
    if not ready:
        return []
    version, sender, channel = step.version, step.sender, step.channel
    choices = tuple((b, b) for b in version.buttons or [])
    at = campaign.flow_node or flow.start
    # The campaign's session replaces whatever the voter had open on this channel.
    db.execute(
        update(S)
        .where(S.c.contact_id.in_([contact.id for _, contact, _, _ in ready]), S.c.channel == channel)
        .where(S.c.status != "ended")
        .values(status="ended", end_reason="superseded", ended_at=now, timeout_at=None)
    )
    sprints = [start(flow, contact_view(contact), channel=channel, now=_iso(now), at=at) for _, contact, _, _ in ready]
    expires = now + dt.timedelta(seconds=flow.expire_s) if flow.expire_s else None
    session_ids = list(
        db.scalars(
            insert(S).returning(S.c.id, sort_by_parameter_order=True),
            [
                {
                    "contact_id": contact.id,
                    "flow_name": flow.name,
                    "flow_version": campaign.flow_version,
                    "channel": channel,
                    "sender_id": sender.id,
                    "campaign_id": campaign.id,
                    "status": "waiting",
                    "waiting_for": "template",
                    "state": sprint.state,
                    "started_at": now,
                    "updated_at": now,
                    "expires_at": expires,
                }
                for (_, contact, _, _), sprint in zip(ready, sprints, strict=True)
            ],
        )
    )
    funnel = [
        {"session_id": sid, "contact_id": contact.id, "flow_name": flow.name, "step": event.step, "reached_at": now}
        for (_, contact, _, _), sprint, sid in zip(ready, sprints, session_ids, strict=True)
        for event in sprint.events
        if isinstance(event, FunnelReached)
    ]
    if funnel:
        db.execute(insert(FunnelEvent.__table__), funnel)
    texts = [templates.render(version, bound) for _, _, bound, _ in ready]
    media = [{"url": version.media_url, "type": version.media_kind}] if version.media_url else []
    message_ids = list(
        db.scalars(
            insert(M).returning(M.c.id, sort_by_parameter_order=True),
            [
                {
                    "contact_id": contact.id,
                    "session_id": sid,
                    "sender_id": sender.id,
                    "campaign_id": campaign.id,
                    "recipient_id": rid,
                    "direction": "out",
                    "purpose": "campaign",
                    "channel": channel,
                    "body": text,
                    "media": media,
                    "choices": [{"key": k, "label": label} for k, label in choices],
                    "node": at,
                    "status": "sending",
                    "attempts": 1,
                    "created_at": now,
                }
                for (rid, contact, _, _), sid, text in zip(ready, session_ids, texts, strict=True)
            ],
        )
    )
    db.execute(
        update(R).where(R.c.id == bindparam("rid")).values(message_id=bindparam("mid"), session_id=bindparam("sid")),
        [
            {"rid": rid, "mid": mid, "sid": sid}
            for (rid, _, _, _), mid, sid in zip(ready, message_ids, session_ids, strict=True)
        ],
    )
    return [
        Claimed(rid, mid, sid, contact.id, contact.phone, text, choices, bound, validity)
        for (rid, contact, bound, validity), mid, sid, text in zip(ready, message_ids, session_ids, texts, strict=True)
    ]


def settle(db: Session, outcomes: Sequence[Outcome], now: dt.datetime) -> None:
    """Store what the provider said about each send, in one transaction.

    Statuses only move forward: a status callback that already moved a row on (it can
    come before the provider's answer is stored) is not overwritten.
    """
    accepted = [o for o in outcomes if o.status in ("sent", "delivered", "unknown")]
    if accepted:
        params = [
            {
                "mid": o.claimed.message_id,
                "rid": o.claimed.recipient_id,
                "pid": o.provider_id,
                "st": o.status,
                "code": o.error_code,
                "msg": o.error_msg,
                "at": now if o.status != "unknown" else None,
            }
            for o in accepted
        ]
        # One statement per row and table. A callback may have moved the row on already:
        # the status only if still sending; the times it was sent (and delivered) and the
        # provider's id whatever the status, unless already known.
        for table, key in ((M, "mid"), (R, "rid")):
            sending = table.c.status == "sending"
            at = bindparam("at", type_=table.c.sent_at.type)
            values: dict[str, Any] = {
                "status": case((sending, bindparam("st")), else_=table.c.status),
                "error_code": case((sending, bindparam("code")), else_=table.c.error_code),
                "sent_at": func.coalesce(table.c.sent_at, at),
                "delivered_at": case(
                    (bindparam("st") == "delivered", func.coalesce(table.c.delivered_at, at)),
                    else_=table.c.delivered_at,
                ),
            }
            if table is M:
                values["provider_id"] = func.coalesce(table.c.provider_id, bindparam("pid"))
            db.execute(update(table).where(table.c.id == bindparam(key)).values(values), params)
    events = [
        {
            "message_id": o.claimed.message_id,
            "status": _event_status(o),
            "applied": True,
            "error_code": o.error_code,
            "raw": {"provider_status": o.status, **({"error": o.error_msg} if o.error_msg else {})},
            "received_at": now,
        }
        for o in outcomes
        if o.status != "not_sent"
    ]
    if events:
        db.execute(insert(MessageStatusEvent.__table__), events)
    _failed(db, [o for o in outcomes if o.status in ("failed", "retry")], now)
    _unsent(db, [o for o in outcomes if o.status == "not_sent"])


def _event_status(o: Outcome) -> str:
    return "failed" if o.status == "retry" else o.status


def _failed(db: Session, outcomes: Sequence[Outcome], now: dt.datetime) -> None:
    if not outcomes:
        return
    params = [
        {
            "mid": o.claimed.message_id,
            "rid": o.claimed.recipient_id,
            "sid": o.claimed.session_id,
            "code": o.error_code,
            "msg": (o.error_msg or "")[:500],
            "at": now,
            "rst": "pending" if o.status == "retry" else "failed",
        }
        for o in outcomes
    ]
    # The message of a failed attempt stays on the timeline, failed; a retryable failure
    # puts the recipient back to pending for a later attempt (a new message).
    db.execute(
        update(M)
        .where(M.c.id == bindparam("mid"))
        .values(
            status="failed", error_code=bindparam("code"), error_message=bindparam("msg"), failed_at=bindparam("at")
        ),
        params,
    )
    db.execute(
        update(R)
        .where(R.c.id == bindparam("rid"), R.c.status == "sending")
        .values(
            status=bindparam("rst"), error_code=bindparam("code"), error_msg=bindparam("msg"), failed_at=bindparam("at")
        ),
        params,
    )
    db.execute(
        update(S)
        .where(S.c.id == bindparam("sid"), S.c.status != "ended")
        .values(status="ended", end_reason="not_sent", ended_at=bindparam("at")),
        [p for p in params if p["sid"]],
    )


def _unsent(db: Session, outcomes: Sequence[Outcome]) -> None:
    """Sends stopped before the provider was called (pause, abort): back to pending, no trace."""
    release(db, [(o.claimed.recipient_id, o.claimed.message_id) for o in outcomes])


def release(db: Session, claims: Sequence[tuple[int, int]]) -> list[int]:
    """Put claimed rows the provider was never asked about back to ``pending``, without a trace.

    ``claims``: (recipient id, message id) pairs. A row moves only while it is still
    ``sending`` that message — never a row another job has claimed again since — and its
    prepared message and session go with it. Returns the recipient ids released.
    """
    released: list[int] = []
    for rid, mid in claims:
        row = db.execute(
            update(R)
            .where(R.c.id == rid, R.c.status == "sending", R.c.message_id == mid)
            .values(status="pending", attempts=R.c.attempts - 1, message_id=None, session_id=None, sending_at=None)
            .returning(R.c.id)
        ).first()
        if row is not None:
            released.append(rid)
    mids = [mid for rid, mid in claims if rid in set(released)]
    if mids:
        sids = list(db.scalars(select(Message.session_id).where(Message.id.in_(mids), Message.session_id.is_not(None))))
        db.execute(delete(MessageStatusEvent).where(MessageStatusEvent.message_id.in_(mids)))
        db.execute(delete(Message).where(Message.id.in_(mids)))
        if sids:
            db.execute(delete(FlowSession).where(FlowSession.id.in_(sids)))
    return released


class Uncalled:
    """The claimed rows whose provider call has not begun, kept in Redis per campaign.

    A row is added when it is claimed (before the claim commits) and taken out by the
    thread that sends it, right before the provider call — a thread that finds it gone
    does not call. So a row still listed when its worker died was certainly never sent,
    and the reconciler puts it back to ``pending`` instead of making it ``unknown``.
    Taking a row out is the one atomic step both sides race for (``SREM``): whoever
    removes it owns it. Losing the list (Redis flushed) errs on the safe side: every row
    left ``sending`` counts as possibly sent.
    """

    TTL_S = 24 * 3600

    def __init__(self, conn: Any, campaign_id: int) -> None:
        self.conn = conn
        self.key = f"canvass:campaign:{campaign_id}:uncalled"

    def add(self, recipient_ids: Sequence[int]) -> None:
        """List claimed rows (call inside the claim's transaction, before it commits)."""
        if recipient_ids:
            with self.conn.pipeline() as pipe:
                pipe.sadd(self.key, *recipient_ids)
                pipe.expire(self.key, self.TTL_S)
                pipe.execute()

    def take(self, recipient_id: int) -> bool:
        """Take a row out; True when this caller took it (and so may call the provider)."""
        return bool(self.conn.srem(self.key, recipient_id))

    def take_many(self, recipient_ids: Sequence[int]) -> set[int]:
        """Take several rows out; return those this caller took."""
        with self.conn.pipeline() as pipe:
            for rid in recipient_ids:
                pipe.srem(self.key, rid)
            taken = pipe.execute()
        return {rid for rid, removed in zip(recipient_ids, taken, strict=True) if removed}


def _iso(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")
