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
still possible is not completed yet.

A fallback costs money too. With a budget, a fallback attempt is given only while what
the campaign has spent or committed (sent, pending, and the fallbacks already given)
plus its price stays within the budget, in recipient order; the others keep their first
attempt's status and are marked ``over_budget`` (no fallback), so the campaign can end.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session

from bot.models import ConsentStatus, Contact
from bot.phones import MOBILE_KINDS
from campaigns import pricing, templates
from campaigns.models import Campaign, Recipient, SkipCode

FALLBACK_BASE = 1_000_000
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
    ids = list(
        db.scalars(
            select(Recipient.id)
            .join(Contact, Contact.id == Recipient.contact_id)
            .where(
                _eligible(campaign, now),
                Contact.consent != ConsentStatus.OPTED_OUT.value,
                _reachable(step),
            )
            .order_by(Recipient.id)
        )
    )
    if campaign.budget_micros is not None and ids:
        ids = _within_budget(db, campaign, step, ids)
    if not ids:
        return []
    first = (
        db.scalar(
            select(func.max(Recipient.batch)).where(
                Recipient.campaign_id == campaign.id, Recipient.batch >= FALLBACK_BASE
            )
        )
        or FALLBACK_BASE - 1
    ) + 1
    rows = [{"rid": rid, "b": first + i // batch_size} for i, rid in enumerate(ids)]
    table = Recipient.__table__
    db.execute(
        update(table)
        .where(table.c.id == bindparam("rid"), table.c.channel == campaign.channel)
        .values(status="pending", channel=step["channel"], batch=bindparam("b"), queued_at=now),
        rows,
    )
    return sorted({r["b"] for r in rows})


def _within_budget(db: Session, campaign: Campaign, step: dict[str, Any], ids: list[int]) -> list[int]:
    """The first of ``ids`` whose fallback fits the budget; mark the rest ``over_budget``.

    A moved row's cost becomes its first attempt's (when that was charged) plus the
    fallback's price, so the campaign's spend counts both attempts once it is sent.
    """
    assert campaign.budget_micros is not None
    committed = db.scalar(
        select(func.coalesce(func.sum(Recipient.cost_micros), 0)).where(
            Recipient.campaign_id == campaign.id, Recipient.status.in_((*pricing.CHARGED, "pending", "sending"))
        )
    )
    price, joins = pricing.unit_price(
        step["channel"], templates.price_units(db, step["channel"], step.get("template_version_id"))
    )
    rows = db.execute(
        pricing.with_prices(
            select(Recipient.id, Recipient.status, Recipient.cost_micros, price)
            .select_from(Recipient)
            .join(Contact, Contact.id == Recipient.contact_id),
            joins,
        )
        .where(Recipient.id.in_(ids))
        .order_by(Recipient.id)
    ).all()
    room = campaign.budget_micros - int(committed or 0)
    fits: list[dict[str, int]] = []
    over: list[int] = []
    for rid, status, cost, fallback_price in rows:
        extra = int(fallback_price or 0)
        if extra <= room:
            room -= extra
            charged = int(cost or 0) if status in pricing.CHARGED else 0
            fits.append({"rid": rid, "cost": charged + extra})
        else:
            over.append(rid)
    table = Recipient.__table__
    if fits:
        db.execute(update(table).where(table.c.id == bindparam("rid")).values(cost_micros=bindparam("cost")), fits)
    if over:
        db.execute(
            update(Recipient)
            .where(Recipient.id.in_(over))
            .values(skip_code=SkipCode.OVER_BUDGET.value)
            .execution_options(synchronize_session=False)
        )
    return [f["rid"] for f in fits]


def _reachable(step: dict[str, Any]) -> Any:
    # SMS and WhatsApp need a mobile line; calls take any.
    return true() if step["channel"] == "voice" else Contact.phone_kind.in_(sorted(MOBILE_KINDS))


def waiting(db: Session, campaign: Campaign) -> int:
    """Recipients a fallback may still reach (the campaign is not complete while there are).

    Failed and undelivered first attempts (the reconciler moves them within a minute), and
    with ``after`` the sent ones not yet delivered (they fall back once it has passed).
    """
    step = campaign.fallback
    if not step:
        return 0
    could = Recipient.status.in_(("failed", "undelivered"))
    if step.get("after_s"):
        could = or_(could, Recipient.status == "sent")
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
