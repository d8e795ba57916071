"""Live numbers of a campaign: counts by status and skip code, rates, why some were not sent.

Progress shows what operators watch: **pending** (not sent yet: pending and sending),
**completed** (handed to the provider: sent, delivered, read, and unknown — sent but not
yet confirmed), **failed** (failed, undelivered) and **skipped**. Rates are over the
messages handed to the provider.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import and_, any_, func, select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.flowlibrary import FlowLibrary
from bot.models import Contact, FlowSession, FunnelEvent, Sender
from bot.sendwindows import Policy
from bot.settings import Settings
from campaigns import budgets, compliance, eta, pricing
from campaigns.models import Campaign, Price, Recipient
from campaigns.pricing import Money

GROUPS = {
    "pending": ("pending", "sending"),
    "completed": ("sent", "delivered", "read", "unknown"),
    "failed": ("failed", "undelivered"),
    "skipped": ("skipped",),
}


@dataclasses.dataclass(frozen=True)
class Progress:
    """A campaign's numbers at one moment."""

    campaign_id: int
    status: str
    total: int
    by_status: dict[str, int]
    skipped: dict[str, int]  # by skip code
    failed: dict[str, int]  # by error code
    replied: int
    flows_completed: int
    spent: Money = dataclasses.field(default_factory=Money)
    budget: Money | None = None
    currency: str | None = None
    # Each channel the campaign sends on (its own, its fallback's): spent, and its own cap.
    by_channel: dict[str, budgets.Line] = dataclasses.field(default_factory=dict)

    def group(self, name: str) -> int:
        """Pending, completed, failed or skipped."""
        return sum(self.by_status.get(s, 0) for s in GROUPS[name])

    @property
    def handed_over(self) -> int:
        """Messages the provider took (the denominator of the rates)."""
        return self.group("completed") + self.group("failed")

    def rate(self, numerator: int) -> float:
        """``numerator`` over the messages handed over (0 when none)."""
        return round(numerator / self.handed_over, 4) if self.handed_over else 0.0

    def as_dict(self) -> dict[str, Any]:
        """For the API and ``campaigns status --json``."""
        received = self.by_status.get("delivered", 0) + self.by_status.get("read", 0)
        return {
            "campaign_id": self.campaign_id,
            "status": self.status,
            "total": self.total,
            "progress": {name: self.group(name) for name in GROUPS},
            "by_status": self.by_status,
            "not_sent": {"skipped": self.skipped, "failed": self.failed},
            "replied": self.replied,
            "flows_completed": self.flows_completed,
            "spend": {
                "spent": str(self.spent),
                "budget": None if self.budget is None else str(self.budget),
                "currency": self.currency,
                "by_channel": {
                    ch: {"spent": str(line.spent), "budget": None if line.cap is None else str(line.cap)}
                    for ch, line in self.by_channel.items()
                },
            },
            "rates": {
                "received": self.rate(received),
                "read": self.rate(self.by_status.get("read", 0)),
                "replied": self.rate(self.replied),
            },
        }


def measure(db: Session, campaign: Campaign) -> Progress:
    """Count everything in one pass over the campaign's recipients (and a look at the price table).

    Counts by status and code, the voters who replied or finished the flow (through each
    recipient's session) and the spend on each channel (``campaigns.budgets``) come from
    one grouped query, so a 100,000-recipient campaign is read once, not three times.
    """
    by_status: dict[str, int] = {}
    skipped: dict[str, int] = {}
    failed: dict[str, int] = {}
    replied = completed = spent_first = spent_fallback = 0
    first_part, fallback_part = budgets.parts(pricing.CHARGED)
    rows = db.execute(
        select(
            Recipient.status,
            Recipient.skip_code,
            Recipient.error_code,
            func.count(),
            first_part,
            fallback_part,
            func.count(FlowSession.replied_at),
            func.count(FlowSession.id).filter(FlowSession.end_reason == "completed"),
        )
        # A recipient's session is always one its campaign started (claims, calls): saying so
        # lets the database read the campaign's sessions only, by their index.
        .outerjoin(FlowSession, (FlowSession.id == Recipient.session_id) & (FlowSession.campaign_id == campaign.id))
        .where(Recipient.campaign_id == campaign.id)
        .group_by(Recipient.status, Recipient.skip_code, Recipient.error_code)
    )
    for status, skip, error, n, first, fallback, n_replied, n_completed in rows:
        by_status[status] = by_status.get(status, 0) + n
        replied += n_replied or 0
        completed += n_completed or 0
        spent_first += int(first or 0)
        spent_fallback += int(fallback or 0)
        if status == "skipped" and skip:
            skipped[skip] = skipped.get(skip, 0) + n
        elif status in GROUPS["failed"]:
            failed[error or "unknown"] = failed.get(error or "unknown", 0) + n
    return Progress(
        campaign_id=campaign.id,
        status=campaign.status,
        total=sum(by_status.values()),
        by_status=by_status,
        skipped=skipped,
        failed=failed,
        replied=replied,
        flows_completed=completed,
        spent=pricing.money(spent_first + spent_fallback),
        budget=budgets.overall(campaign),
        currency=db.scalar(select(Price.currency).limit(1)),
        by_channel=budgets.lines(campaign, budgets.by_channel(campaign, spent_first, spent_fallback)),
    )


def funnel_counts(db: Session, campaign: Campaign) -> list[tuple[str, int]]:
    """How many voters of the campaign reached each funnel step, in the flow's order.

    Counted from the funnel events of the campaign's sessions (a voter counts once per
    step however often they came back to it). Every step the flow declares is listed,
    reached or not, so a chart shows where voters stop; steps reached that the pinned
    flow does not declare (a subflow's) follow, by name.
    """
    sessions = select(FlowSession.id).where(FlowSession.campaign_id == campaign.id)
    if db.get_bind().dialect.name == "postgresql":
        # The campaign's session ids as one array: PostgreSQL then looks their steps up in
        # the (session_id, step) index. Joined instead, it hashes every funnel event of
        # every flow, which grows with the whole table rather than with the campaign.
        mine = FunnelEvent.session_id == any_(func.array(sessions.scalar_subquery()))
    else:
        mine = FunnelEvent.session_id.in_(sessions)
    reached = dict(
        db.execute(
            select(FunnelEvent.step, func.count(func.distinct(FunnelEvent.contact_id)))
            .where(mine)
            .group_by(FunnelEvent.step)
        ).all()
    )
    found = FlowLibrary(db).get(campaign.flow_name, campaign.flow_version) if campaign.flow_name else None
    declared = list(found[0].funnel) if found else []
    extra = sorted(step for step in reached if step not in declared)
    return [(step, int(reached.get(step, 0))) for step in declared + extra]


def bar(progress: Progress, width: int = 40) -> str:
    """A one-line text bar: ``[####=====.....] 120/500 sent, 3 failed, 40 skipped``."""
    total = max(progress.total, 1)
    done, bad, skip = progress.group("completed"), progress.group("failed"), progress.group("skipped")
    cells = [("#", done), ("x", bad), ("-", skip)]
    drawn = "".join(ch * round(width * n / total) for ch, n in cells)[:width]
    return (
        f"[{drawn.ljust(width, '.')}] {done + bad + skip}/{progress.total}: "
        f"{done} sent, {bad} failed, {skip} skipped, {progress.group('pending')} pending; {progress.replied} replied"
    )


def send_rate(db: Session, campaign: Campaign) -> float:
    """Sends a second: the campaign's pace, or its sender's rate when that is lower."""
    sender = db.get(Sender, campaign.sender_id) if campaign.sender_id else None
    return min(campaign.pace_per_s, sender.rate_per_s) if sender is not None else campaign.pace_per_s


def eta_for(db: Session, settings: Settings, campaign: Campaign) -> eta.Eta:
    """When the campaign's pending voters will have been sent, at its pace, inside each one's windows."""
    rate = send_rate(db, campaign)
    waiting = and_(Recipient.campaign_id == campaign.id, Recipient.status.in_(GROUPS["pending"]))
    zones = compliance.zones_of(db, waiting, (Recipient, Recipient.contact_id == Contact.id))
    policy = compliance.policy_for(settings, campaign, db)
    now = utcnow()
    return eta.estimate_by_zone(
        now,
        zones,
        rate,
        policy,
        campaign.deadline,
        _silenced(db, campaign, policy, now),
    )


def _silenced(db: Session, campaign: Campaign, policy: Policy, now: dt.datetime) -> tuple[Any, ...]:
    """Per tagged blackout that lasts past the deadline: its waiting voters, and when it starts."""
    deadline, found = campaign.deadline, []
    for b in policy.blackouts:
        if deadline is None or b.tag is None or not (b.starts < deadline <= b.ends) or b.ends <= now:
            continue
        count = db.scalar(
            select(func.count())
            .select_from(Recipient)
            .join(Contact, Contact.id == Recipient.contact_id)
            .where(Recipient.campaign_id == campaign.id, Recipient.status == "pending", compliance.concerns(b))
        )
        if count:
            found.append((f"{b.tag}={b.value}", int(count), b.starts))
    return tuple(found)


def eta_json(found: eta.Eta) -> dict[str, Any]:
    """The ETA as the API and ``status --json`` show it."""
    return {
        "remaining": found.remaining,
        "finishes_at": found.finishes_at.strftime("%Y-%m-%dT%H:%M:%SZ") if found.finishes_at else None,
        "deadline": found.deadline.strftime("%Y-%m-%dT%H:%M:%SZ") if found.deadline else None,
        "late": found.late,
        "warning": found.warning(),
    }
