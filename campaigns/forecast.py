"""What a campaign not yet launched will do: whom it reaches, what it costs, when it is done.

The console's wizard shows this before the operator launches: the audience's size and
cost (``operations.estimate``: one grouped query), when sending will end at the
campaign's pace inside its windows (``campaigns.eta``), and warnings in plain words —
voters without a price, an estimate over the budget, a deadline it cannot meet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.models import Contact
from bot.phones import InvalidPhone
from bot.settings import Settings
from campaigns import compliance, eta, operations, planner, pricing, progress
from campaigns.models import Campaign


@dataclasses.dataclass(frozen=True)
class Forecast:
    """The audience, the cost, the expected end, and what the operator should know."""

    voters: int
    estimate: pricing.Estimate | None
    eta: eta.Eta | None
    zone: str
    warnings: list[str]


def audience_zone(db: Session, campaign: Campaign, region: str) -> str:
    """The time zone most of the campaign's audience is in (UTC when none is known)."""
    try:
        who = planner.audience(db, campaign, operations.phones_for_test(campaign, region))
    except InvalidPhone:
        return compliance.FALLBACK_ZONE
    zone = db.scalar(
        select(Contact.timezone)
        .where(who, Contact.timezone.is_not(None))
        .group_by(Contact.timezone)
        .order_by(func.count().desc(), Contact.timezone)
        .limit(1)
    )
    return zone or compliance.FALLBACK_ZONE


def forecast(db: Session, settings: Settings, campaign: Campaign, *, now: dt.datetime | None = None) -> Forecast:
    """Everything the review step shows about a draft or ready campaign."""
    now = now or utcnow()
    region = settings.default_region
    warnings: list[str] = []
    if campaign.segment is None and not campaign.is_test:
        return Forecast(0, None, None, compliance.FALLBACK_ZONE, ["no audience chosen yet"])
    try:
        found = operations.estimate(db, campaign, region=region)
    except InvalidPhone:
        return Forecast(0, None, None, compliance.FALLBACK_ZONE, ["the test numbers are not all valid numbers"])
    voters = sum(n for n, _ in found.by_code.values()) + found.unpriced
    if not voters:
        warnings.append("nobody matches the audience: there is no one to send to")
    if found.unpriced:
        warnings.append(
            f"{found.unpriced:,} voter(s) are in countries without a {campaign.channel} price: they count as free "
            f"(canvass prices set {campaign.channel} CODE PRICE)"
        )
    if campaign.budget_micros is not None and found.total > pricing.money(campaign.budget_micros):
        warnings.append(
            f"the estimate {found.total} {found.currency or ''} is over the budget "
            f"{pricing.money(campaign.budget_micros)}: the voters past it are skipped with over_budget"
        )
    zone = audience_zone(db, campaign, region)
    start = campaign.scheduled_at if campaign.scheduled_at and campaign.scheduled_at > now else now
    expected = eta.estimate(
        start,
        voters,
        progress.send_rate(db, campaign),
        compliance.policy_for(settings, campaign, db),
        zone,
        campaign.deadline,
    )
    if expected.warning():
        warnings.append(expected.warning() or "")
    elif voters and expected.finishes_at is None:
        warnings.append("no send window opens in sight: nothing would be sent")
    return Forecast(voters, found, expected, zone, warnings)
