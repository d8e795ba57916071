"""Which campaigns still depend on a saved segment (before it is changed or deleted)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.segments import named_segments
from campaigns.models import Campaign, CampaignStatus

# Until launch a campaign reads its saved segment afresh; after it, its recipients are written.
UNLAUNCHED = (CampaignStatus.DRAFT, CampaignStatus.READY, CampaignStatus.SCHEDULED)


def campaigns_naming(db: Session, name: str) -> list[Campaign]:
    """Campaigns not launched yet whose audience names the saved segment ``name``."""
    # Few campaigns wait for launch at a time; reading their segments beats JSON SQL
    # that differs between SQLite and PostgreSQL.
    waiting = db.scalars(select(Campaign).where(Campaign.status.in_([s.value for s in UNLAUNCHED])))
    return [c for c in waiting if name in named_segments(c.segment)]
