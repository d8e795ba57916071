"""Channel fallback: a voter the campaign's WhatsApp message did not reach gets it by SMS.

A campaign may name one fallback step in its spec::

    fallback:
      channel: sms
      sender: "+919999900002"
      template: turnout_sms           # or {name: ..., language: ...}
      variables: {1: {contact: name}} # optional: the campaign's own bindings by default
      after: 2h                       # optional: also when still not delivered after this long

A recipient whose first attempt **failed or was undelivered** (or, with ``after``, was
sent but not delivered in time) is given a new attempt on the fallback channel: the
same recipient row, back to ``pending`` with the new channel, in a batch of its own
(numbers from ``FALLBACK_BASE``), sent by the same batch jobs. The export shows it in the
``attempts`` and ``channel`` columns; the first attempt's message stays on the timeline.
The scheduler's reconciler moves the recipients every minute; a campaign with fallbacks
still possible is not completed yet (without ``after``: until ``FAILURE_GRACE`` after its
last send, as failures are reported by status callbacks, after the send).

A fallback costs money too. With a budget, a fallback attempt is given only while its
price fits, in recipient order, both what is left of the total (the campaign's spend and
commitments on every channel: sent, pending, and the fallbacks already given) and what is
left of the fallback channel's own cap (``budget: {sms: 400}``; ``campaigns.budgets``);
the others keep their first attempt's status and are marked ``over_budget`` (no
fallback), so the campaign can end. Its price is recorded apart from the first
attempt's, so spend is shown per channel.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.models import ConsentStatus, Contact, Sender
from bot.phones import MOBILE_KINDS
from campaigns import budgets, pricing, sms_costs, templates
from campaigns.claims import Step
from campaigns.models import Campaign, CampaignStatus, Recipient, SkipCode, TemplateVersion

FALLBACK_BASE = 1_000_000
# How long after a send its failure may still come (a status callback) and fall back,
# when the fallback has no ``after``: the campaign stays active that long after its last send.
FAILURE_GRACE = dt.timedelta(minutes=15)
DURATION = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d)\s*$")
SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_after(value: Any) -> int:
    """Seconds from ``90m``, ``2h``, ``1d`` (or a number of seconds)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = DURATION.match(str(value)) if isinstance(value, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"after: a duration such as 30m, 2h or 1d, got {value!r}")
    return int(match.group(1)) * SECONDS[match.group(2)]


def step_for(db: Session, campaign: Campaign, batch: int) -> Step | None:
    """What a batch sends: the campaign's own channel, sender and template, or for a fallback batch the fallback's.

    None when one of them is gone (deleted since the launch).
    """
    if batch >= FALLBACK_BASE:
        cfg = campaign.fallback or {}
        channel, bindings = cfg.get("channel", ""), cfg.get("variables") or campaign.variables
        version, sender = (
            db.get(TemplateVersion, cfg.get("template_version_id")),
            db.get(Sender, cfg.get("sender_id")),
        )
    else:
        channel, bindings = campaign.channel, campaign.variables
        # A call has no template: the flow speaks.
        version = db.get(TemplateVersion, campaign.template_version_id) if campaign.template_version_id else None
        sender = db.get(Sender, campaign.sender_id) if campaign.sender_id else None
    if (version is None and channel != "voice") or sender is None:
        return None
    return Step(channel, sender, version, bindings)


def _eligible(campaign: Campaign, now: dt.datetime) -> Any:
    step = campaign.fallback or {}
    reached_not = Recipient.status.in_(("failed", "undelivered"))
    if step.get("after_s"):
        too_long = and_(
            Recipient.status == "sent", Recipient.sent_at < now - dt.timedelta(seconds=int(step["after_s"]))
        )
        reached_not = or_(reached_not, too_long)
    return and_(
        Recipient.campaign_id == campaign.id,
        Recipient.channel == campaign.channel,
        reached_not,
        # Refused a fallback for the budget: not waiting for one any more.
        or_(Recipient.skip_code.is_(None), Recipient.skip_code != SkipCode.OVER_BUDGET.value),
    )


def move(db: Session, campaign: Campaign, now: dt.datetime, batch_size: int) -> list[int]:
    """Give every recipient the first attempt did not reach a fallback attempt; return the new batches."""
    step = campaign.fallback
    if not step:
        return []
    # Locked as the completion check locks it: a campaign completed meanwhile gets no new
    # pending rows, and one is not completed while its fallbacks are being given.
    status = db.scalar(select(Campaign.status).where(Campaign.id == campaign.id).with_for_update(key_share=True))
    if status != CampaignStatus.ACTIVE:
        return []
    price, joins = pricing.unit_price(
        step["channel"], templates.price_units(db, step["channel"], step.get("template_version_id"))
    )
    candidates = db.execute(
        pricing.with_prices(
            select(Recipient.id, Recipient.status, Recipient.cost_micros, price)
            .select_from(Recipient)
            .join(Contact, Contact.id == Recipient.contact_id),
            joins,
        )
        .where(_eligible(campaign, now), Contact.consent != ConsentStatus.OPTED_OUT.value, _reachable(step))
        .order_by(Recipient.id)
    ).all()
    if not candidates:
        return []
    capped = sms_costs.capped(campaign, step["channel"])
    if capped:
        # Counted with every cost a claim corrected and reserved (their claims commit first).
        sms_costs.lock(db, campaign)
    priced = _within_budget(db, campaign, step["channel"], candidates)
    if not priced:
        return []
    first = (
        db.scalar(
            select(func.max(Recipient.batch)).where(
                Recipient.campaign_id == campaign.id, Recipient.batch >= FALLBACK_BASE
            )
        )
        or FALLBACK_BASE - 1
    ) + 1
    rows = [{**row, "b": first + i // batch_size} for i, row in enumerate(priced)]
    table = Recipient.__table__
    db.execute(
        update(table)
        # Still as read: a "sent" row delivered meanwhile (its callback) keeps its delivery.
        .where(table.c.id == bindparam("rid"), table.c.channel == campaign.channel, table.c.status == bindparam("st"))
        .values(
            status="pending",
            channel=step["channel"],
            batch=bindparam("b"),
            queued_at=now,
            cost_micros=bindparam("cost"),
            fallback_cost_micros=bindparam("extra"),
        ),
        rows,
    )
    if capped:
        sms_costs.forget(db, campaign)  # committed outside a reservation: counted again when next needed
    return sorted({r["b"] for r in rows})


def _within_budget(db: Session, campaign: Campaign, channel: str, candidates: Sequence[Any]) -> list[dict[str, int]]:
    """The candidates whose fallback fits the budget, with their costs; mark the rest ``over_budget``.

    ``candidates``: (id, status, cost, fallback price) in recipient order. A fallback fits
    while its price stays within what is left of the fallback channel's cap and of the
    total. A moved row's cost becomes its first attempt's (when the provider took it, else
    0) plus the fallback's price, which is also kept apart: spend is counted per channel.
    """
    room = budgets.room(db, campaign, channel)
    fits: list[dict[str, int]] = []
    over: list[dict[str, int]] = []
    for rid, status, cost, fallback_price in candidates:
        extra = int(fallback_price or 0)
        if room is not None and extra > room:
            over.append({"rid": rid})
            continue
        if room is not None:
            room -= extra
        charged = int(cost or 0) if status in pricing.CHARGED else 0
        fits.append({"rid": rid, "st": status, "cost": charged + extra, "extra": extra})
    if over:
        table = Recipient.__table__
        db.execute(
            update(table).where(table.c.id == bindparam("rid")).values(skip_code=SkipCode.OVER_BUDGET.value), over
        )
    return fits


def _reachable(step: dict[str, Any]) -> Any:
    # SMS and WhatsApp need a mobile line; calls take any.
    return true() if step["channel"] == "voice" else Contact.phone_kind.in_(sorted(MOBILE_KINDS))


def waiting(db: Session, campaign: Campaign, now: dt.datetime | None = None) -> int:
    """Recipients a fallback may still reach (the campaign is not complete while there are).

    Failed and undelivered first attempts (the reconciler moves them within a minute);
    with ``after`` the sent ones not yet delivered (they fall back once it has passed),
    else those sent (or unknown) less than ``FAILURE_GRACE`` ago, whose failure may
    still be reported.
    """
    step = campaign.fallback
    if not step:
        return 0
    could = Recipient.status.in_(("failed", "undelivered"))
    if step.get("after_s"):
        could = or_(could, Recipient.status == "sent")
    else:
        # Failures come by status callback, after the send: the last ones sent (or left
        # unknown) may still fail for a while.
        since = func.coalesce(Recipient.sent_at, Recipient.sending_at)
        recent = and_(Recipient.status.in_(("sent", "unknown")), since >= (now or utcnow()) - FAILURE_GRACE)
        could = or_(could, recent)
    count = db.scalar(
        select(func.count())
        .select_from(Recipient)
        .join(Contact, Contact.id == Recipient.contact_id)
        .where(
            Recipient.campaign_id == campaign.id,
            Recipient.channel == campaign.channel,
            could,
            or_(Recipient.skip_code.is_(None), Recipient.skip_code != SkipCode.OVER_BUDGET.value),
            Contact.consent != ConsentStatus.OPTED_OUT.value,
            _reachable(step),
        )
    )
    return int(count or 0)
