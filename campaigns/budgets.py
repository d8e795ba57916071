"""Budgets: the most a campaign may spend, in total and per channel, and what each channel spent.

A budget is a total (``budget: 1000``), a cap per channel the campaign sends on
(``budget: {whatsapp: 600, sms: 400}``), or both (``{total: 1000, whatsapp: 600, sms: 400}``).
Every cap is a ceiling of its own: a channel's attempts stop at its cap or at the total,
whichever is reached first; a channel without a cap of its own is held by the total alone.

At launch the voters past the campaign channel's cap (in send order) are skipped with
``over_budget`` (:func:`cap`); a fallback attempt is given only while its price fits the
fallback channel's cap and the total (``campaigns.fallback``).

Spend per channel comes from two columns of a recipient: its estimated cost, and the part
of it its fallback attempt added (set when the fallback is given, together with the first
attempt's part, which is kept only when the provider took that message). The first
channel spent the first parts of the rows charged on their attempt or moved to a fallback;
the fallback channel spent the fallback parts of the rows charged on the fallback.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from campaigns import pricing
from campaigns.models import Campaign, Price, Recipient, RecipientStatus, SkipCode
from campaigns.pricing import Money

# Rows whose cost is spent or promised: charged, or still to be sent.
COMMITTED = (*pricing.CHARGED, "pending", "sending")


class Line(NamedTuple):
    """One channel's spend and its cap (None: held by the total alone)."""

    spent: Money
    cap: Money | None


@dataclasses.dataclass(frozen=True)
class Budget:
    """A campaign's caps in millionths: the total and one per channel (each optional)."""

    total: int | None = None
    by_channel: dict[str, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, campaign: Campaign) -> Budget:
        """The campaign's budget as its columns hold it."""
        split = {str(k): int(v) for k, v in (campaign.budget_by_channel or {}).items()}
        return cls(campaign.budget_micros, split)

    def __bool__(self) -> bool:
        return self.total is not None or bool(self.by_channel)

    def cap(self, channel: str) -> int | None:
        """The most ``channel`` may spend: its own cap or the total, the lower (None: no cap)."""
        caps = [c for c in (self.total, self.by_channel.get(channel)) if c is not None]
        return min(caps) if caps else None

    def overall(self, channels: list[str]) -> int | None:
        """The most the campaign may spend on ``channels`` together (None when one is uncapped)."""
        parts = [self.by_channel.get(ch) for ch in channels]
        split = sum(p for p in parts if p is not None) if parts and None not in parts else None
        caps = [c for c in (self.total, split) if c is not None]
        return min(caps) if caps else None

    def as_spec(self) -> dict[str, str] | None:
        """As the spec writes it (``{"total": "1000", "sms": "400"}``), for the API; None without caps."""
        if not self:
            return None
        out = {} if self.total is None else {"total": str(pricing.money(self.total))}
        return out | {ch: str(pricing.money(m)) for ch, m in sorted(self.by_channel.items())}


def channels(campaign: Campaign) -> list[str]:
    """The channels the campaign sends on: its own, then its fallback's."""
    step = campaign.fallback or {}
    found = [campaign.channel]
    if step.get("channel") and step["channel"] not in found:
        found.append(step["channel"])
    return found


def unused_channels(split: dict[str, Any], sends_on: list[str]) -> list[tuple[str, str]]:
    """(field, message) for each cap of a channel the campaign does not send on (``sends_on``)."""
    return [
        (f"budget.{ch}", f"the campaign does not send on {ch} (it sends on {' and '.join(sends_on)})")
        for ch in sorted(split)
        if ch not in sends_on
    ]


def parts(statuses: tuple[str, ...]) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """SQL sums of the first attempts' and the fallback attempts' costs of rows in ``statuses``.

    A moved row's first part counts whatever its fallback's status: it is what the first
    attempt cost (0 when the provider did not take it).
    """
    fallback = func.coalesce(Recipient.fallback_cost_micros, 0)
    moved = Recipient.fallback_cost_micros.is_not(None)
    first = func.sum(Recipient.cost_micros - fallback).filter(or_(Recipient.status.in_(statuses), moved))
    return first, func.sum(Recipient.fallback_cost_micros).filter(Recipient.status.in_(statuses))


def by_channel(campaign: Campaign, first: int, fallback: int) -> dict[str, int]:
    """The two parts by channel name (a campaign without fallback has one)."""
    names = channels(campaign)
    out = {names[0]: first}
    if len(names) > 1:
        out[names[1]] = fallback
    return out


def committed(db: Session, campaign: Campaign) -> tuple[int, int]:
    """Millionths spent or promised so far: (first attempts, fallback attempts)."""
    first, fallback = parts(COMMITTED)
    row = db.execute(select(first, fallback).where(Recipient.campaign_id == campaign.id)).one()
    return int(row[0] or 0), int(row[1] or 0)


def room(db: Session, campaign: Campaign, channel: str) -> int | None:
    """Millionths ``channel`` may still commit (None: no cap holds it).

    The least of what is left of the total and of its own cap, after everything spent or promised.
    """
    budget = Budget.of(campaign)
    if budget.cap(channel) is None:
        return None
    first, fallback = committed(db, campaign)
    rooms = [] if budget.total is None else [budget.total - first - fallback]
    if (own := budget.by_channel.get(channel)) is not None:
        rooms.append(own - by_channel(campaign, first, fallback).get(channel, 0))
    return min(rooms)


def spent(db: Session, campaign: Campaign) -> dict[str, Money]:
    """What the messages the provider took cost, by channel."""
    first, fallback = parts(pricing.CHARGED)
    row = db.execute(select(first, fallback).where(Recipient.campaign_id == campaign.id)).one()
    return {ch: pricing.money(m) for ch, m in by_channel(campaign, int(row[0] or 0), int(row[1] or 0)).items()}


def lines(campaign: Campaign, spent_by_channel: dict[str, int]) -> dict[str, Line]:
    """Each channel of the campaign with what it spent (millionths given) and its own cap."""
    budget = Budget.of(campaign)
    return {
        ch: Line(pricing.money(spent_by_channel.get(ch, 0)), _money(budget.by_channel.get(ch)))
        for ch in channels(campaign)
    }


def overall(campaign: Campaign) -> Money | None:
    """The most the campaign may spend on all its channels (None when one of them is uncapped)."""
    return _money(Budget.of(campaign).overall(channels(campaign)))


def _money(micros: int | None) -> Money | None:
    return None if micros is None else pricing.money(micros)


def cap(db: Session, campaign: Campaign) -> int:
    """Skip the pending voters past the campaign channel's cap (in send order); return how many."""
    limit = Budget.of(campaign).cap(campaign.channel)
    if limit is None:
        return 0
    running = (
        select(
            Recipient.id.label("rid"),
            func.sum(func.coalesce(Recipient.cost_micros, 0))
            .over(order_by=(Recipient.batch, Recipient.id))
            .label("spent"),
        )
        .where(Recipient.campaign_id == campaign.id, Recipient.status == RecipientStatus.PENDING.value)
        .subquery()
    )
    over = select(running.c.rid).where(running.c.spent > limit)
    return db.execute(
        update(Recipient)
        .where(Recipient.id.in_(over))
        .values(status=RecipientStatus.SKIPPED.value, skip_code=SkipCode.OVER_BUDGET.value, batch=None, queued_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def problems(db: Session, campaign: Campaign) -> list[str]:
    """What is wrong with the budget against the campaign's channels and the price table."""
    budget = Budget.of(campaign)
    found = [f"{field}: {message}" for field, message in unused_channels(budget.by_channel, channels(campaign))]
    priced = set(db.scalars(select(Price.channel).group_by(Price.channel)))
    if budget.total is not None and campaign.channel not in priced:
        found.append(
            f"budget: no {campaign.channel} prices to count it with (canvass prices set {campaign.channel} ...)"
        )
    for ch in sorted(budget.by_channel):
        if ch not in priced and ch in channels(campaign):
            found.append(f"budget.{ch}: no {ch} prices to count it with (canvass prices set {ch} ...)")
    return found
