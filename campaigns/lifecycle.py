"""The campaign lifecycle: which status may follow which, and nothing else.

    draft ⇄ ready → scheduled → active ⇄ paused
    scheduled → ready (unschedule) · scheduled → active (send now, or its time came)
    ready → active (launch now) · active → completed (everything sent) → ended
    draft, ready, scheduled, active, paused → aborted

Every move goes through :func:`move`, a conditional UPDATE: two operators (or an operator
and the scheduler) racing on one campaign cannot both win, and a refused move says
which moves the current status allows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.db import utcnow
from campaigns.models import Campaign, CampaignStatus

S = CampaignStatus
ALLOWED: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    S.DRAFT: frozenset({S.READY, S.ABORTED}),
    S.READY: frozenset({S.DRAFT, S.SCHEDULED, S.ACTIVE, S.ABORTED}),
    S.SCHEDULED: frozenset({S.READY, S.ACTIVE, S.ABORTED}),
    S.ACTIVE: frozenset({S.PAUSED, S.COMPLETED, S.ABORTED}),
    S.PAUSED: frozenset({S.ACTIVE, S.ABORTED}),
    S.COMPLETED: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
    S.ABORTED: frozenset(),
}
# Campaigns whose voters are engaged: another campaign skips them (engaged_elsewhere).
# A completed campaign still holds its voters (their conversations go on) until it is ended.
ENGAGING = frozenset({S.ACTIVE, S.PAUSED, S.COMPLETED})
# The moment each status is reached, kept on the campaign.
STAMPS = {S.ACTIVE: "launched_at", S.COMPLETED: "completed_at", S.ENDED: "ended_at", S.ABORTED: "aborted_at"}
VERBS = {
    S.READY: "mark ready",
    S.DRAFT: "edit",
    S.SCHEDULED: "schedule",
    S.ACTIVE: "launch",
    S.PAUSED: "pause",
    S.COMPLETED: "complete",
    S.ENDED: "end",
    S.ABORTED: "abort",
}


class TransitionRefused(ValueError):
    """The campaign's status does not allow the move."""

    def __init__(self, campaign_id: int, current: str, target: str) -> None:
        allowed = sorted(ALLOWED.get(CampaignStatus(current), frozenset()))
        options = ", ".join(allowed) if allowed else "nothing (it is final)"
        super().__init__(
            f"campaign {campaign_id} is {current}: cannot {VERBS.get(CampaignStatus(target), target)} it "
            f"(from {current} it can go to {options})"
        )
        self.campaign_id = campaign_id
        self.current = current
        self.target = target


def allowed(current: str, target: str) -> bool:
    """True when a campaign may move from ``current`` to ``target``."""
    return CampaignStatus(target) in ALLOWED[CampaignStatus(current)]


def move(
    db: Session,
    campaign: Campaign,
    target: CampaignStatus,
    *,
    now: dt.datetime | None = None,
    **values: object,
) -> None:
    """Move ``campaign`` to ``target`` (with extra column ``values``) or raise ``TransitionRefused``.

    The UPDATE is conditional on the status read, so a concurrent move makes this one
    fail instead of overwriting it.
    """
    current = campaign.status
    if not allowed(current, target):
        raise TransitionRefused(campaign.id, current, target)
    now = now or utcnow()
    stamp = STAMPS.get(target)
    if stamp:
        values.setdefault(stamp, now)
    changed = db.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == current)
        .values(status=target.value, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.refresh(campaign)
        raise TransitionRefused(campaign.id, campaign.status, target)
    db.refresh(campaign)
