"""Claiming recipients for sending, and settling what the provider said.

A batch job reads a handful of ``pending`` rows and their voters, checks consent and the
send windows at send time, and claims the rows that may go with a conditional UPDATE
(``pending -> sending``), so two jobs working on one batch never both send to a voter. In
the same transaction it renders the template, stores the opening message (status
``sending``) and parks the voter's session at the flow's start (the template stands in
for its first prompt). Only then does it call the provider: a row left ``sending`` by a
worker that died is never sent again — the reconciler makes it ``unknown`` and the status
callback, which carries the message id, settles it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from bot import bulk
from bot.channels.base import Outbound
from bot.db import utcnow
from bot.engine import Flow, start
from bot.engine.events import FunnelReached
from bot.models import ConsentStatus, FunnelEvent, Sender
from bot.phones import area_zones
from bot.router import view_of
from bot.sendwindows import Policy, PolicyError
from campaigns import claim_sql, sms_costs, templates, variables
from campaigns.compliance import FALLBACK_ZONE, SEND_LEAD
from campaigns.models import Campaign, RecipientStatus, SkipCode, TemplateVersion
from campaigns.uncalled import entry

R, M, S = claim_sql.R, claim_sql.M, claim_sql.S


@dataclasses.dataclass(frozen=True)
class Step:
    """What one attempt sends: the channel, the sender, the template version and its bindings.

    The first attempt is the campaign's own; a fallback (WhatsApp failed -> SMS) is another.
    """

    channel: str
    sender: Sender
    version: TemplateVersion | None  # None for a call: the flow speaks, no template
    bindings: dict[str, Any]

    def outbound(self, item: Claimed, public_base_url: str) -> Outbound:
        """The provider request for one claimed message (its status callback names it)."""
        version, sender = self.version, self.sender
        assert version is not None
        return Outbound(
            message_id=item.message_id,
            to=item.to,
            sender=sender.address,
            channel=self.channel,
            text=item.text,
            media_urls=(version.media_url,) if version.media_url else (),
            choices=item.choices,
            content_sid=version.content_sid,
            content_variables=item.content_variables if version.content_sid else None,
            messaging_service_sid=sender.messaging_service_sid,
            validity_s=item.validity_s if self.channel == "sms" else None,
            status_callback=f"{public_base_url}/webhooks/twilio/message-status?m={item.message_id}",
        )


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
    # A call campaign's call (``ivr.models.Call``); the message is then the attempt's record.
    call_id: int | None = None
    # When it was claimed (the row's ``sending_at``): with the ids, its not-yet-called entry.
    claimed_at: dt.datetime | None = None

    @property
    def listed(self) -> str:
        """This claim's entry in the not-yet-called list (``campaigns.uncalled``)."""
        return entry(self.recipient_id, self.message_id, self.claimed_at)


@dataclasses.dataclass(frozen=True)
class Voter:
    """What a claim reads of a contact: its columns and its tags, as plain values.

    Read with two Core queries for a whole chunk (no ORM objects to build and track).
    """

    id: int
    phone: str
    name: str | None
    language: str | None
    timezone: str | None
    fields: dict[str, Any]
    consent: str
    tags: dict[str, str | None]  # name -> value, by name

    @classmethod
    def load(cls, db: Session, contact_ids: Sequence[int]) -> dict[int, Voter]:
        """The voters of ``contact_ids``, by id."""
        pg = bulk.postgresql(db)
        statements, params = claim_sql.statements(pg), {"ids": bulk.ids(pg, contact_ids)}
        tags: dict[int, dict[str, str | None]] = {cid: {} for cid in contact_ids}
        # All rows at once (iterating a result fetches them one by one).
        for cid, name, value in db.execute(statements.tags, params).all():
            tags[cid][name] = value
        rows = db.execute(statements.voters, params).all()
        return {row[0]: cls(*row, tags=tags[row[0]]) for row in rows}

    def view(self) -> dict[str, Any]:
        """What the flow sees of the voter (``bot.router.contact_view``)."""
        return view_of(self.name, self.phone, self.language, self.fields, self.tags)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one send."""

    claimed: Claimed
    status: str  # sent, delivered, unknown, failed, retry, not_sent
    provider_id: str | None = None
    error_code: str | None = None
    error_msg: str | None = None


def next_pending(
    db: Session,
    campaign_id: int,
    batch: int,
    limit: int,
    exclude: set[int],
    now: dt.datetime | None = None,
    after: int = 0,
) -> list[tuple[int, int]]:
    """The batch's next pending rows, as (id, contact id) (those retried in this run, or due later, left out).

    ``after``: the last id this run has seen. Every row before it was claimed, left out or
    taken by another job, so the read starts there instead of at the batch's first row
    (read again and again, claimed rows would make each read longer than the last).
    """
    params = {"campaign": campaign_id, "batch": batch, "now": now or utcnow(), "after": after}
    found = db.execute(claim_sql.NEXT_PENDING, params | {"n": limit + len(exclude)}).all()
    return [(rid, cid) for rid, cid in found if rid not in exclude][:limit]


def claim(
    db: Session,
    campaign: Campaign,
    step: Step,
    flow: Flow,
    rows: Sequence[tuple[int, int]],
    now: dt.datetime,
    policy: Policy | None = None,
    prepare: Prepare | None = None,
) -> tuple[list[Claimed], dict[int, dt.datetime]]:
    """Claim the pending ``rows`` (id, contact id) that may be sent now and prepare their messages.

    The voters are read first: a row whose voter may not be sent now (a send window or a
    blackout) is left pending, untouched, and returned with the moment it may; one whose
    voter opted out (or lacks a variable) is skipped. ``prepare`` claims the others
    (``pending -> sending``; a row another job took meanwhile is left out) and stores their
    attempts: ``prepare_messages`` by default, a call campaign's
    ``campaigns.call_claims.prepare_calls``. Returns the rows won and the rows deferred.
    """
    policy = policy or Policy()
    if not rows:
        return [], {}
    voters = Voter.load(db, [cid for _, cid in rows])
    values = variables.Values(
        db, variables.parse(step.bindings), voters.values(), tags={v.id: v.tags for v in voters.values()}
    )
    ready: list[Ready] = []
    skipped: list[dict[str, Any]] = []
    deferred: dict[int, dt.datetime] = {}
    for rid, cid in sorted(rows):
        voter = voters[cid]
        zones, tags = area_zones(voter.phone, voter.timezone) or (FALLBACK_ZONE,), voter.tags
        try:
            allowed_at = policy.next_allowed_in(now, zones, tags, lead=SEND_LEAD)
        except PolicyError:
            # The windows never overlap in the voter's zone (changed since the launch, which
            # skips such voters): no moment will ever allow it.
            skipped.append({"rid": rid, "code": SkipCode.OUTSIDE_BLACKOUT.value, "why": never(zones[0])})
            continue
        if allowed_at > now:
            deadline = campaign.deadline
            if deadline is not None and allowed_at >= deadline and policy.blacked_out_at(deadline, tags):
                # A silence begun (or added) since the launch outlasts the deadline.
                skipped.append({"rid": rid, "code": SkipCode.OUTSIDE_BLACKOUT.value, "why": None})
            else:
                deferred[rid] = allowed_at
            continue
        bound = values.for_contact(cid)
        if voter.consent == ConsentStatus.OPTED_OUT or bound is None:
            # Consent (and the voter's data) are checked again at send time: a voter who
            # opted out since the launch is not sent the campaign.
            code = SkipCode.OPTED_OUT if voter.consent == ConsentStatus.OPTED_OUT else SkipCode.MISSING_VARIABLE
            skipped.append({"rid": rid, "code": code.value, "why": None})
            continue
        until = policy.open_until_in(now, zones, tags)
        validity = max(1, int((until - now).total_seconds())) if until is not None else None
        ready.append((rid, voter, bound, validity))
    out = (prepare or prepare_messages)(db, campaign, step, flow, ready, now)
    if skipped:
        db.execute(
            update(R)
            .where(R.c.id == bindparam("rid"), R.c.status == "pending")
            .values(
                status=RecipientStatus.SKIPPED.value,
                skip_code=bindparam("code"),
                error_msg=bindparam("why"),
                batch=None,
            ),
            skipped,
        )
    return out, deferred


def never(zone: str) -> str:
    """Why a voter was skipped whom no moment may be sent: the windows never overlap in ``zone``."""
    return f"the send windows never overlap in {zone}: no moment allows sending"


def take(
    db: Session, ready: Sequence[Ready], now: dt.datetime, ids: Mapping[int, tuple[int, int]] | None = None
) -> list[Ready]:
    """Claim the ``ready`` rows still pending (``pending -> sending``, one attempt more); the rows won.

    A row another job claimed meanwhile is not won. ``ids``: by row, its message and
    session ids, drawn before (PostgreSQL), written by the same UPDATE.
    """
    if not ready:
        return []
    pg = bulk.postgresql(db)
    statements = claim_sql.statements(pg)
    if ids is None:
        params = {"ids": bulk.ids(pg, [rid for rid, _, _, _ in ready])}
        won = set(db.scalars(statements.claim, params | {"now": now}))
    else:
        rows = [{"rid": rid, "mid": ids[rid][0], "sid": ids[rid][1]} for rid, _, _, _ in ready]
        won = set(db.scalars(statements.claim_with_ids, statements.claimed.arrays_of(rows) | {"now": now}))
    return [row for row in ready if row[0] in won]


Ready = tuple[int, "Voter", dict[str, str], int | None]  # recipient, voter, bound variables, validity
Prepare = Callable[[Session, Campaign, "Step", Flow, Sequence[Ready], dt.datetime], list["Claimed"]]


def prepare_messages(
    db: Session,
    campaign: Campaign,
    step: Step,
    flow: Flow,
    ready: Sequence[Ready],
    now: dt.datetime,
) -> list[Claimed]:
    """Claim the ``ready`` rows and store their opening messages and parked sessions.

    A statement per table for the whole chunk (not per voter): at a few hundred sends a
    second, per-row round trips to the database were the batch's main cost. On PostgreSQL
    the ids are drawn first and the claim writes them (one UPDATE of the recipients, not
    two); a row lost to another job leaves its ids unused. An SMS whose text takes another
    number of segments than the template's sample is priced again (``campaigns.sms_costs``).
    """
    if not ready:
        return []
    texts = {rid: templates.render(step.version, bound) for rid, _, bound, _ in ready}
    deltas = sms_costs.corrections(db, step.channel, step.version, texts)
    version, sender, channel = step.version, step.sender, step.channel
    assert version is not None
    choices = tuple((b, b) for b in version.buttons or [])
    at = campaign.flow_node or flow.start
    pg = bulk.postgresql(db)
    statements = claim_sql.statements(pg)
    drawn = bulk.draw_ids(db, [(M, len(ready)), (S, len(ready))])
    ids = dict(zip([rid for rid, _, _, _ in ready], zip(*drawn, strict=True), strict=True)) if drawn else None
    ready = take(db, ready, now, ids)
    if deltas:
        # The rows are locked (won), then the budget's room: the order of every claim.
        kept = set(sms_costs.charge(db, campaign, channel, [rid for rid, _, _, _ in ready], deltas))
        ready = [row for row in ready if row[0] in kept]
    if not ready:
        return []
    mids = [ids[rid][0] for rid, _, _, _ in ready] if ids else None
    sids = [ids[rid][1] for rid, _, _, _ in ready] if ids else None
    # The campaign's session replaces whatever the voter had open on this channel.
    contacts = bulk.ids(pg, [voter.id for _, voter, _, _ in ready])
    db.execute(statements.supersede, {"ids": contacts, "on_channel": channel, "now": now})
    iso = _iso(now)
    sprints = [start(flow, voter.view(), channel=channel, now=iso, at=at) for _, voter, _, _ in ready]
    expires = now + dt.timedelta(seconds=flow.expire_s) if flow.expire_s else None
    session_ids = bulk.insert_ids(
        db,
        S,
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
        ids=sids,
    )
    funnel = [
        {"session_id": sid, "contact_id": contact.id, "flow_name": flow.name, "step": event.step, "reached_at": now}
        for (_, contact, _, _), sprint, sid in zip(ready, sprints, session_ids, strict=True)
        for event in sprint.events
        if isinstance(event, FunnelReached)
    ]
    bulk.copy_rows(db, FunnelEvent.__table__, funnel)
    media = [{"url": version.media_url, "type": version.media_kind}] if version.media_url else []
    buttons = [{"key": k, "label": label} for k, label in choices]  # one list: converted once (bulk)
    message_ids = bulk.insert_ids(
        db,
        M,
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
                "body": texts[rid],
                "media": media,
                "choices": buttons,
                "node": at,
                "status": "sending",
                "attempts": 1,
                "created_at": now,
            }
            for (rid, contact, _, _), sid in zip(ready, session_ids, strict=True)
        ],
        ids=mids,
    )
    if ids is None:  # SQLite: the ids are known only now
        statements.claimed.execute(
            db,
            statements.give_ids,
            [
                {"rid": rid, "mid": mid, "sid": sid}
                for (rid, _, _, _), mid, sid in zip(ready, message_ids, session_ids, strict=True)
            ],
        )
    return [
        Claimed(rid, mid, sid, contact.id, contact.phone, texts[rid], choices, bound, validity, claimed_at=now)
        for (rid, contact, bound, validity), mid, sid in zip(ready, message_ids, session_ids, strict=True)
    ]


def _iso(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")
