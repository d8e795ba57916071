"""The console's campaign pages: the list, one campaign with its live progress, downloads.

The campaign page renders every number at request time, so it is complete without
JavaScript; ``static/campaign.js`` then polls ``progress.json`` every two seconds and
moves the bar, the counts and the funnel chart in place. The lifecycle buttons post to
``campaign_actions``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from flask import jsonify, render_template, request
from sqlalchemy import func, select

from bot.db import utcnow
from bot.models import Sender
from bot.segments import SegmentError
from bot.segments import count as segment_count
from campaigns import call_analytics, progress
from campaigns.models import Campaign, CampaignStatus, Recipient, Template, TemplateVersion
from web.auth.access import requires
from web.console import bp
from web.console.campaign_actions import ACTIONS, FORMS
from web.context import db_session, runtime
from web.downloads import csv_download, floip_download
from web.errors import BadInput, NotFound
from web.figures import remembered
from web.models import Role

STATUSES = [s.value for s in CampaignStatus]
GROUPS = list(progress.GROUPS)  # pending, completed, failed, skipped
# The bar draws finished work from the left and what is left to send at the right.
BAR_ORDER = ("completed", "failed", "skipped", "pending")
# Nothing changes any more: the page need not poll.
FINAL = frozenset({CampaignStatus.ENDED.value, CampaignStatus.ABORTED.value})
LIST_LIMIT = 200
AUDIENCE_TTL_S = 60


@dataclasses.dataclass(frozen=True)
class Segment:
    """One coloured part of a progress bar."""

    group: str
    count: int
    x: float  # percent from the left
    width: float  # percent


def bar_segments(groups: dict[str, int]) -> list[Segment]:
    """The four parts of a progress bar, as percentages of the total (all zero when empty)."""
    total = sum(groups.values())
    parts, x = [], 0.0
    for name in BAR_ORDER:
        width = round(100 * groups.get(name, 0) / total, 2) if total else 0.0
        parts.append(Segment(name, groups.get(name, 0), round(x, 2), width))
        x += width
    return parts


@bp.app_template_filter("duration")
def duration(seconds: int) -> str:
    """``45 s``, ``12 min`` or ``2.5 h`` (static/campaign.js words it the same)."""
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _campaign(campaign_id: int) -> Campaign:
    campaign = db_session().get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"There is no campaign {campaign_id}.")
    return campaign


@bp.get("/campaigns")
@requires(Role.VIEWER)
def campaigns() -> Any:
    """Campaigns, newest first, with their status and counts; ``?status=`` filters."""
    s = db_session()
    status = request.args.get("status", "").strip()
    if status and status not in STATUSES:
        raise BadInput(f"status must be one of {', '.join(STATUSES)}; got {status!r}", field="status")
    by_status = dict(s.execute(select(Campaign.status, func.count()).group_by(Campaign.status)).all())
    stmt = select(Campaign).order_by(Campaign.id.desc()).limit(LIST_LIMIT)
    if status:
        stmt = stmt.where(Campaign.status == status)
    rows = s.scalars(stmt).all()
    # One grouped query for the counts of every campaign shown, not one per row.
    counts: dict[int, dict[str, int]] = {c.id: dict.fromkeys(GROUPS, 0) for c in rows}
    group_of = {st: g for g, members in progress.GROUPS.items() for st in members}
    if rows:
        for campaign_id, st, n in s.execute(
            select(Recipient.campaign_id, Recipient.status, func.count())
            .where(Recipient.campaign_id.in_(list(counts)))
            .group_by(Recipient.campaign_id, Recipient.status)
        ):
            counts[campaign_id][group_of.get(st, "pending")] += n
    return render_template(
        "console/campaigns.html",
        campaigns=rows,
        counts=counts,
        bars={cid: bar_segments(c) for cid, c in counts.items()},
        status=status,
        statuses=STATUSES,
        by_status=by_status,
        total=sum(by_status.values()),
    )


def audience_count(c: Campaign) -> int:
    """How many contacts the campaign's audience matches, counted at most once a minute.

    A million voters take most of a second to count, and the page of a campaign being
    prepared is opened again and again; a changed audience is a new count at once.
    """
    spec = json.dumps(c.segment, sort_keys=True)
    key = f"audience:{c.id}:{hashlib.sha256(spec.encode()).hexdigest()[:16]}"
    return int(remembered(key, lambda: segment_count(db_session(), c.segment), AUDIENCE_TTL_S))


@bp.get("/campaigns/<int:campaign_id>")
@requires(Role.VIEWER)
def campaign(campaign_id: int) -> Any:
    """One campaign: settings, problems, live progress, rates, reasons, funnel, actions."""
    s = db_session()
    c = _campaign(campaign_id)
    template = s.get(Template, c.template_id) if c.template_id else None
    version = s.get(TemplateVersion, c.template_version_id) if c.template_version_id else None
    sender = s.get(Sender, c.sender_id) if c.sender_id else None
    audience: int | str | None = None
    if c.status in (CampaignStatus.DRAFT, CampaignStatus.READY, CampaignStatus.SCHEDULED) and c.segment:
        try:
            audience = audience_count(c)
        except SegmentError as exc:
            audience = str(exc)
    numbers = live_numbers(c)
    return render_template(
        "console/campaign.html",
        c=c,
        template=template,
        version=version,
        sender=sender,
        audience=audience,
        n=numbers,
        bar=bar_segments(numbers["progress"]),
        poll=c.status not in FINAL,
        actions=[a for a in ACTIONS.values() if c.status in a.statuses],
        forms={name: c.status in f.statuses for name, f in FORMS.items()},
    )


def live_numbers(c: Campaign) -> dict[str, Any]:
    """What the page shows and ``progress.json`` sends: progress, rates, reasons, funnel."""
    s = db_session()
    measured = progress.measure(s, c)
    numbers = measured.as_dict()
    numbers["percent"] = {
        g: round(100 * measured.group(g) / measured.total, 1) if measured.total else 0.0 for g in GROUPS
    }
    numbers["funnel"] = [{"step": step, "count": n} for step, n in progress.funnel_counts(s, c)]
    # The ETA: at the campaign's (or its sender's lower) pace, inside its send windows and
    # blackouts; a warning when it cannot finish before its deadline.
    found = None
    if c.status == CampaignStatus.ACTIVE and measured.group("pending"):
        found = progress.eta_for(s, runtime().settings, c)
    ends = found.finishes_at if found else None
    numbers["seconds_left"] = max(1, round((ends - utcnow()).total_seconds())) if ends else 0
    numbers["eta_warning"] = found.warning() if found else None
    if c.channel == "voice":
        numbers["calls"] = call_analytics.measure(s, c).to_dict()
    return numbers


@bp.get("/campaigns/<int:campaign_id>/progress.json")
@requires(Role.VIEWER)
def campaign_progress(campaign_id: int) -> Any:
    """The campaign page's live numbers (the page polls this every two seconds)."""
    return jsonify(live_numbers(_campaign(campaign_id)))


@bp.get("/campaigns/<int:campaign_id>/export.csv")
@requires(Role.VIEWER)
def campaign_export_csv(campaign_id: int) -> Any:
    """Download the per-voter funnel CSV (streamed; the same file as the API's)."""
    _campaign(campaign_id)
    return csv_download(campaign_id)


@bp.get("/campaigns/<int:campaign_id>/export.zip")
@requires(Role.VIEWER)
def campaign_export_floip(campaign_id: int) -> Any:
    """Download the answers as a FLOIP Flow Results package."""
    return floip_download(_campaign(campaign_id))
