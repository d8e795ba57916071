"""The law as it applies to one campaign: the deployment's, the organisation's, its own.

The organisation's windows and blackouts are stored by an admin in the console
(``bot.sendpolicy``).

Operators add windows and blackouts to a campaign; they can never remove the
deployment's (``CANVASS_SEND_WINDOW``, ``CANVASS_BLACKOUTS``) or the organisation's:
every window applies, and every blackout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, exists, false, func, or_, select, true
from sqlalchemy.orm import Session

from bot import sendpolicy
from bot.models import Contact, ContactTag
from bot.sendwindows import Blackout, Policy, parse_blackouts, parse_windows
from bot.settings import Settings
from campaigns.models import Campaign

# Voters whose contact has no time zone are held to this one (imports derive it from the number).
FALLBACK_ZONE = "UTC"
# A send is claimed before it goes (its slot of the pace, other campaigns' on a shared
# sender): none is claimed less than this before its window closes or a blackout begins.
SEND_LEAD = dt.timedelta(seconds=60)


def policy_for(settings: Settings, campaign: Campaign, db: Session) -> Policy:
    """Every window and blackout the campaign must obey (the organisation's read from ``db``)."""
    org = sendpolicy.org_policy(db)
    return Policy(
        windows=tuple(settings.send_windows) + org.windows + parse_windows(campaign.send_windows or None),
        blackouts=tuple(settings.blackouts) + org.blackouts + parse_blackouts(campaign.blackouts or None),
    )


def blacked_out_until_deadline(policy: Policy, campaign: Campaign, now: dt.datetime) -> ColumnElement[bool]:
    """SQL: the voter is in a blackout that lasts past the campaign's deadline (skip: outside_blackout)."""
    if campaign.deadline is None:
        return false()
    conditions = [concerns(b) for b in policy.outlasting(now, campaign.deadline)]
    return or_(false(), *conditions)


def concerns(blackout: Blackout) -> ColumnElement[bool]:
    """SQL: the voter (``Contact``) is one the blackout silences."""
    if blackout.tag is None:
        return true()
    value = (blackout.value or "").lower()
    return exists().where(
        ContactTag.contact_id == Contact.id,
        ContactTag.name == blackout.tag,
        func.lower(func.trim(ContactTag.value)) == value,
    )


def voter_zone() -> ColumnElement[str]:
    """SQL: the time zone a voter's windows are read in (their contact's, else ``FALLBACK_ZONE``)."""
    return func.coalesce(Contact.timezone, FALLBACK_ZONE)


def zones_of(db: Session, voters: ColumnElement[bool], *joins: Any) -> dict[str, int]:
    """How many of the contacts ``voters`` selects are in each time zone (as their windows are read)."""
    zone = voter_zone().label("zone")
    stmt = select(zone, func.count()).select_from(Contact)
    for target, on in joins:
        stmt = stmt.join(target, on)
    return {z: int(n) for z, n in db.execute(stmt.where(voters).group_by(zone)).all()}


def closed_zones(policy: Policy, zones: Mapping[str, int], now: dt.datetime) -> dict[str, int]:
    """Of ``zones`` (zone -> voters), those where the windows never overlap.

    Windows all apply at once: the deployment's 09:00-21:00 IST and a campaign's
    08:00-09:00 in New York never meet, and no moment would ever allow sending those voters.
    """
    return {zone: n for zone, n in zones.items() if policy.windows and not policy.ever_allows(now, zone)}


def never_open(zones: Mapping[str, int]) -> ColumnElement[bool]:
    """SQL: the voter is in one of ``zones`` (where no moment allows sending: skip ``outside_blackout``)."""
    return voter_zone().in_(sorted(zones)) if zones else false()


def closed_message(zones: dict[str, int]) -> str:
    """``send_window: ...`` naming the zones where the windows never overlap, and their voters."""
    listed = ", ".join(f"{zone} ({n} voter{'s' if n != 1 else ''})" for zone, n in sorted(zones.items()))
    return f"send_window: the windows never overlap for voters in {listed}: no moment allows sending them"
