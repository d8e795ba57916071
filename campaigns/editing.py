"""Changing a campaign before it sends: drafts and ready campaigns only, rechecked after every change.

The console's wizard saves a campaign step by step through :func:`update`: the columns
change, then ``operations.refresh`` moves it between draft and ready by what
``campaigns.readiness`` finds. A campaign that is scheduled, sending or done is not
edited (unschedule it first, or clone it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from campaigns import operations
from campaigns.models import Campaign, CampaignStatus
from campaigns.operations import CampaignError

EDITABLE = frozenset({CampaignStatus.DRAFT.value, CampaignStatus.READY.value})
# The columns an edit may set: what a spec sets, in the campaign's own terms (ids, not names).
COLUMNS = frozenset(
    {
        "name",
        "description",
        "channel",
        "sender_id",
        "is_test",
        "test_numbers",
        "segment",
        "template_id",
        "template_language",
        "variables",
        "voice",
        "flow_name",
        "flow_node",
        "pace_per_s",
        "scheduled_at",
        "deadline",
        "send_windows",
        "blackouts",
        "budget_micros",
        "budget_by_channel",
    }
)


def editable(campaign: Campaign) -> bool:
    """True when the campaign may still be changed."""
    return campaign.status in EDITABLE


def check_editable(campaign: Campaign) -> None:
    """Raise ``CampaignError`` saying why a campaign cannot be changed any more."""
    if not editable(campaign):
        raise CampaignError(
            f"campaign {campaign.id} is {campaign.status}: only drafts and ready campaigns can be edited "
            "(unschedule it first, or clone it)"
        )


def update(db: Session, campaign: Campaign, changes: dict[str, Any], *, region: str) -> list[str]:
    """Set ``changes`` (column -> value) on a draft or ready campaign; return what keeps it from ready."""
    check_editable(campaign)
    unknown = sorted(set(changes) - COLUMNS)
    if unknown:
        raise ValueError(f"not an editable campaign column: {', '.join(unknown)}")
    if "channel" in changes and changes["channel"] != campaign.channel:
        # A template and its bindings belong to one channel; a call has options instead.
        campaign.template_id = campaign.template_language = None
        campaign.variables = {}
        campaign.voice = None
    for column, value in changes.items():
        setattr(campaign, column, value)
    db.flush()
    return operations.refresh(db, campaign, region=region)
