"""The organisation at a glance: what the dashboard shows, each figure one aggregate query.

Counts over campaigns are grouped in the database, never looped over in Python; the
figures that read recipient rows read only the **current** campaigns' (running, or
launched in the last 30 days), through the index on ``campaign_id``, so a long history
of finished 100k-voter campaigns does not slow the page down.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from bot.models import HandoffCase, Message, Sender
from campaigns import budgets, pricing, progress
from campaigns.models import Campaign, CampaignStatus, Recipient, Template, TemplateStatus, TemplateVersion
from ivr.models import Call, CallStatus

S = CampaignStatus
LIVE = (S.SCHEDULED.value, S.ACTIVE.value, S.PAUSED.value)
CURRENT_DAYS = 30
# A campaign needs attention when this share of the messages handed to the provider
# failed, once enough were handed over for the share to mean something.
FAILED_SHARE = 0.10
MIN_HANDED = 20
# An active campaign with voters still to send that sent nothing for this long is stalled.
STALLED_AFTER = dt.timedelta(minutes=15)


@dataclasses.dataclass(frozen=True)
class CampaignFigures:
    """One current campaign's numbers, from the grouped query over its recipients."""

    id: int
    name: str
    status: str
    channel: str
    pending: int
    completed: int
    failed: int
    spent: pricing.Money
    budget: pricing.Money | None
    last_sent_at: dt.datetime | None
    launched_at: dt.datetime | None

    @property
    def failed_share(self) -> float:
        """Failed over everything handed to the provider (0 when nothing was)."""
        handed = self.completed + self.failed
        return self.failed / handed if handed else 0.0

    def failing(self) -> bool:
        """True when the failures pass the threshold."""
        return self.completed + self.failed >= MIN_HANDED and self.failed_share >= FAILED_SHARE

    def stalled(self, now: dt.datetime) -> bool:
        """True when it is active, has voters to send, and sent nothing for ``STALLED_AFTER``."""
        last = self.last_sent_at or self.launched_at
        return self.status == S.ACTIVE and self.pending > 0 and last is not None and now - last > STALLED_AFTER


def by_status_and_channel(db: Session) -> dict[tuple[str, str], int]:
    """How many campaigns there are of each (status, channel); test campaigns left out."""
    rows = db.execute(
        select(Campaign.status, Campaign.channel, func.count())
        .where(Campaign.is_test.is_(False))
        .group_by(Campaign.status, Campaign.channel)
    )
    return {(status, channel): n for status, channel, n in rows}


def reach(db: Session) -> int:
    """Distinct voters a campaign message was handed to (sent and beyond), over all campaigns."""
    return (
        db.scalar(
            select(func.count(func.distinct(Recipient.contact_id))).where(
                Recipient.status.in_(progress.GROUPS["completed"])
            )
        )
        or 0
    )


def _current_ids(now: dt.datetime, days: float = CURRENT_DAYS) -> Any:
    """SQL: the ids of the current campaigns (running, or launched in the last ``days`` days)."""
    since = now - dt.timedelta(days=days)
    return (
        select(Campaign.id)
        .where(Campaign.is_test.is_(False), or_(Campaign.status.in_(LIVE), Campaign.launched_at >= since))
        .scalar_subquery()
    )


def current(db: Session, now: dt.datetime) -> list[CampaignFigures]:
    """Running campaigns and those launched in the last 30 days, with counts, spend and last send."""
    chosen = _current_ids(now)
    status = Recipient.status
    first_spent, fallback_spent = budgets.parts(pricing.CHARGED)
    counts = (
        select(
            Recipient.campaign_id.label("cid"),
            func.count().filter(status.in_(progress.GROUPS["pending"])).label("pending"),
            func.count().filter(status.in_(progress.GROUPS["completed"])).label("completed"),
            func.count().filter(status.in_(progress.GROUPS["failed"])).label("failed"),
            first_spent.label("first"),
            fallback_spent.label("fallback"),
            func.max(Recipient.sent_at).label("last_sent"),
        )
        .where(Recipient.campaign_id.in_(chosen))
        .group_by(Recipient.campaign_id)
        .subquery()
    )
    rows = db.execute(
        select(Campaign, counts)
        .outerjoin(counts, counts.c.cid == Campaign.id)
        .where(Campaign.id.in_(chosen))
        .order_by(Campaign.id.desc())
    )
    return [
        CampaignFigures(
            id=c.id,
            name=c.name,
            status=c.status,
            channel=c.channel,
            pending=pending or 0,
            completed=completed or 0,
            failed=failed or 0,
            spent=pricing.money((first or 0) + (fallback or 0)),
            budget=budgets.overall(c),
            last_sent_at=last_sent,
            launched_at=c.launched_at,
        )
        for c, _cid, pending, completed, failed, first, fallback, last_sent in rows
    ]


def replies_since(db: Session, since: dt.datetime) -> int:
    """Messages voters sent in since ``since`` (over the partial index of inbound messages)."""
    return (
        db.scalar(
            select(func.count()).select_from(Message).where(text("direction = 'in'"), Message.created_at >= since)
        )
        or 0
    )


def rejected_templates(db: Session, limit: int = 20) -> list[tuple[str, str, str | None]]:
    """(template, language, reason) whose newest version WhatsApp rejected."""
    newer = aliased(TemplateVersion)
    rows = db.execute(
        select(Template.name, TemplateVersion.language, TemplateVersion.status_reason)
        .join(Template, Template.id == TemplateVersion.template_id)
        .outerjoin(
            newer,
            and_(
                newer.template_id == TemplateVersion.template_id,
                newer.language == TemplateVersion.language,
                newer.version > TemplateVersion.version,
            ),
        )
        .where(TemplateVersion.status == TemplateStatus.REJECTED.value, newer.id.is_(None))
        .order_by(Template.name, TemplateVersion.language)
        .limit(limit)
    )
    return [(name, language, reason) for name, language, reason in rows]


def handoffs_waiting(db: Session) -> tuple[int, int, dt.datetime | None]:
    """Open handoff cases: how many, how many nobody took, and when the oldest opened."""
    total, unassigned, oldest = db.execute(
        select(
            func.count(),
            func.count().filter(HandoffCase.assignee_id.is_(None)),
            func.min(HandoffCase.opened_at),
        ).where(HandoffCase.status == "open")
    ).one()
    return total or 0, unassigned or 0, oldest


def unhealthy_senders(db: Session) -> list[Sender]:
    """Senders marked unhealthy (no campaign may choose them)."""
    return list(db.scalars(select(Sender).where(Sender.healthy.is_(False)).order_by(Sender.channel, Sender.id)))


def sends(db: Session, now: dt.datetime, days: float = 1) -> list[tuple[str, str, str | None, int]]:
    """(channel, status, error code, voters) of the campaigns running or launched in the last ``days``.

    One grouped query; a scrape every few seconds reads only the campaigns that move (and
    the last day's, so a finished campaign's final numbers are scraped too).
    """
    rows = db.execute(
        select(Recipient.channel, Recipient.status, Recipient.error_code, func.count())
        .where(Recipient.campaign_id.in_(_current_ids(now, days)))
        .group_by(Recipient.channel, Recipient.status, Recipient.error_code)
    )
    return [(channel, status, code, n) for channel, status, code, n in rows]


def calls_by_status(db: Session, since: dt.datetime) -> dict[str, int]:
    """Calls placed or received since ``since``, by status.

    Every status is named in the condition so that the index on (status, created_at) is
    read as one short range per status rather than in full.
    """
    rows = db.execute(
        select(Call.status, func.count())
        .where(Call.status.in_([c.value for c in CallStatus]), Call.created_at >= since)
        .group_by(Call.status)
    )
    return dict(rows.tuples().all())
