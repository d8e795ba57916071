"""What a campaign not yet launched will do: whom it reaches, what it costs, when it is done.

The console's wizard shows this before the operator launches: the audience's size and
cost (``operations.estimate``: one grouped query; for a fallback channel, what it would
cost if every voter needed it), when sending will end at the campaign's pace inside its
windows (``campaigns.eta``), and warnings in plain words — voters without a price, an
estimate over the budget or over a channel's own cap, a deadline it cannot meet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.models import Contact
from bot.phones import InvalidPhone
from bot.settings import Settings
from campaigns import (
    budgets,
    compliance,
    eta,
    operations,
    planner,
    pricing,
    progress,
    sms_segments,
    templates,
    variables,
)
from campaigns.models import Campaign

SAMPLE = 500  # voters whose own SMS text is counted before launch


@dataclasses.dataclass(frozen=True)
class ChannelCost:
    """What one channel of the campaign would cost, and the most it may spend."""

    channel: str
    cost: pricing.Money  # the fallback's: if every voter needed it
    cap: pricing.Money | None  # its own cap or the total, the lower
    fallback: bool


@dataclasses.dataclass(frozen=True)
class Forecast:
    """The audience, the cost, the expected end, and what the operator should know."""

    voters: int
    estimate: pricing.Estimate | None
    eta: eta.Eta | None
    zone: str
    warnings: list[str]
    by_channel: list[ChannelCost] = dataclasses.field(default_factory=list)


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
    by_channel = [ChannelCost(campaign.channel, found.total, _cap(campaign, campaign.channel), False)]
    step = campaign.fallback or {}
    if step.get("channel"):
        worst = operations.estimate(db, campaign, region=region, fallback=True)
        by_channel.append(ChannelCost(step["channel"], worst.total, _cap(campaign, step["channel"]), True))
    warnings += _over_budget(campaign, by_channel, found.currency or "")
    who = planner.audience(db, campaign, operations.phones_for_test(campaign, region))
    for fallback in (False, True) if step.get("channel") else (False,):
        warnings += _own_texts(db, campaign, who, fallback=fallback)
    zone = audience_zone(db, campaign, region)
    start = campaign.scheduled_at if campaign.scheduled_at and campaign.scheduled_at > now else now
    policy = compliance.policy_for(settings, campaign, db)
    zones = compliance.zones_of(db, who)
    closed = compliance.closed_zones(policy, zones, start)
    if closed:
        ending = "it cannot be launched" if len(closed) == len(zones) else "they will be skipped (outside_blackout)"
        warnings.append(f"{compliance.closed_message(closed)}; {ending}")
    # The voters of closed zones will be skipped: the ETA is of the others (with them all, none).
    sendable = {z: n for z, n in zones.items() if z not in closed}
    rate = progress.send_rate(db, campaign)
    expected = eta.estimate_by_zone(start, sendable, rate, policy, campaign.deadline)
    if closed and not sendable:
        expected = eta.Eta(None, voters, rate, campaign.deadline)
    elif expected.warning():
        warnings.append(expected.warning() or "")
    elif voters and expected.finishes_at is None:
        warnings.append("no send window opens in sight: nothing would be sent")
    return Forecast(voters, found, expected, zone, warnings, by_channel)


def _cap(campaign: Campaign, channel: str) -> pricing.Money | None:
    cap = budgets.Budget.of(campaign).cap(channel)
    return None if cap is None else pricing.money(cap)


def _over_budget(campaign: Campaign, by_channel: list[ChannelCost], currency: str) -> list[str]:
    """A warning for each channel whose estimate is over its cap, naming the cap that binds."""
    budget = budgets.Budget.of(campaign)
    out = []
    for line in by_channel:
        if line.cap is None or line.cost <= line.cap:
            continue
        own = budget.by_channel.get(line.channel)
        binds = own is not None and (budget.total is None or own < budget.total)
        cap = f"its {line.channel} cap {line.cap}" if binds else f"the budget {line.cap}"
        if line.fallback:
            out.append(
                f"if every voter needed the {line.channel} fallback it would cost {line.cost} {currency}, "
                f"over {cap}: the fallbacks past it are not sent (over_budget)"
            )
        else:
            what = f"the {line.channel} estimate" if binds else "the estimate"
            out.append(f"{what} {line.cost} {currency} is over {cap}: the voters past it are skipped with over_budget")
    return out


def _own_texts(db: Session, campaign: Campaign, who: ColumnElement[bool], *, fallback: bool) -> list[str]:
    """A warning when sampled voters' own SMS texts take more segments than the template's sample.

    The estimate prices every SMS from the sample text; a batch job prices each voter's own
    text as it sends (``campaigns.sms_costs``). ``SAMPLE`` voters at random show the gap.
    """
    channel, version = templates.attempt_version(db, campaign, fallback=fallback)
    if channel != "sms" or version is None:
        return []
    bindings = ((campaign.fallback or {}).get("variables") if fallback else None) or campaign.variables
    planned = templates.segments(version)
    contacts = db.scalars(select(Contact).where(who).order_by(func.random()).limit(SAMPLE)).all()
    try:
        values = variables.Values(db, variables.parse(bindings), contacts)
    except variables.BindingError:
        return []  # readiness names the binding
    counts = [
        sms_segments.segments(templates.render(version, bound))
        for c in contacts
        if (bound := values.for_contact(c.id)) is not None
    ]
    more = sum(1 for n in counts if n > planned)
    if not more:
        return []
    extra = sum(counts) / (len(counts) * planned) - 1
    what = "the sms fallback's" if fallback else "the"
    return [
        f"{more} of {len(counts)} voters sampled get a text longer than {what} template's sample ({planned} SMS "
        f"segment{'s' if planned != 1 else ''}): SMS may cost about {extra:.0%} more than estimated, as each "
        "text is priced when sent (a name outside GSM-7, such as Devanagari, makes the whole text UCS-2)"
    ]
