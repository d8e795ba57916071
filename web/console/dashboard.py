"""The dashboard (``/``): the organisation at a glance, and what needs attention.

Campaigns by status, reach, spend against budgets, replies today, and a list of what
needs someone: failing or stalled campaigns, rejected templates, waiting voters,
unhealthy senders, a missing worker or scheduler.

Every figure comes from ``campaigns.overview`` as one aggregate query; the chart of
campaigns by status and channel is drawn by ``static/dashboard.js`` (vendored Chart.js)
from the table the page already shows, so the page is complete without JavaScript.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import render_template
from rq import Worker
from sqlalchemy import func, select

from bot.db import utcnow
from bot.models import Contact, ContactTag
from campaigns import overview
from campaigns.models import CampaignStatus, Price
from campaigns.pricing import Money
from web.auth.access import requires
from web.console import bp
from web.context import db_session, runtime
from web.figures import remembered
from web.health import scheduler_age
from web.models import Role

CHANNELS = ("whatsapp", "sms", "voice")
# The scheduler beats every 5 s; a minute without a beat means it is not running.
SCHEDULER_LATE_S = 60
# Figures over the whole history (every recipient row, every tag) cost most of a second
# on a million voters: they are kept in Redis this long, shared by every web process.
SLOW_TTL_S = 300


@dataclasses.dataclass(frozen=True)
class Attention:
    """One thing someone should look at: what, why, and where to go."""

    kind: str  # campaign, template, handoff, sender, process
    text: str
    href: str | None = None


def slow_figure(name: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, or its value from Redis when it was computed less than ``SLOW_TTL_S`` ago."""
    return remembered(f"dashboard:{name}", compute, SLOW_TTL_S)


def _processes(now: dt.datetime) -> list[Attention]:
    conn = runtime().redis
    found = []
    try:
        age = scheduler_age(conn)
        workers = Worker.count(connection=conn)
    except Exception as exc:  # noqa: BLE001 - the dashboard still shows the database's figures
        return [Attention("process", f"Redis cannot be reached ({type(exc).__name__}): nothing is being sent.")]
    if age is None or age > SCHEDULER_LATE_S:
        found.append(
            Attention("process", "The scheduler has not been seen for a minute: start it (canvass scheduler).")
        )
    if workers == 0:
        found.append(Attention("process", "No worker is running: nothing is sent until one starts (canvass worker)."))
    return found


def needs_attention(current: list[overview.CampaignFigures], now: dt.datetime) -> list[Attention]:
    """Failing or stalled campaigns, rejected templates, waiting handoffs, unhealthy senders, missing processes."""
    s = db_session()
    found: list[Attention] = []
    for c in current:
        if c.failing():
            found.append(
                Attention(
                    "campaign",
                    f"{c.name}: {c.failed:,} of {c.failed + c.completed:,} messages failed "
                    f"({100 * c.failed_share:.0f}%).",
                    f"/campaigns/{c.id}",
                )
            )
        if c.stalled(now):
            found.append(
                Attention(
                    "campaign",
                    f"{c.name}: {c.pending:,} voters still to send and nothing sent for "
                    f"{int(overview.STALLED_AFTER.total_seconds() // 60)} minutes "
                    "(outside its send window, or no worker?).",
                    f"/campaigns/{c.id}",
                )
            )
    for name, language, reason in overview.rejected_templates(s):
        found.append(
            Attention("template", f"Template {name} ({language}) was rejected: {reason or 'no reason given'}.")
        )
    waiting, unassigned, oldest = overview.handoffs_waiting(s)
    if waiting:
        since = f", the oldest since {oldest:%Y-%m-%d %H:%M} UTC" if oldest else ""
        found.append(
            Attention(
                "handoff",
                f"{waiting:,} voter(s) wait for a person ({unassigned:,} not taken){since}.",
                "/inbox?tab=all",
            )
        )
    for sender in overview.unhealthy_senders(s):
        found.append(
            Attention(
                "sender",
                f"Sender {sender.channel} {sender.address} is unhealthy: {sender.health_note or 'no reason given'}.",
                f"/admin/senders/{sender.id}",
            )
        )
    return found + _processes(now)


@bp.get("/")
@requires(Role.VIEWER)
def dashboard() -> Any:
    """Counts that matter at a glance, and what needs attention."""
    s = db_session()
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    grid = overview.by_status_and_channel(s)
    statuses = [st.value for st in CampaignStatus]
    channels = [ch for ch in CHANNELS if any(grid.get((st, ch)) for st in statuses)] or list(CHANNELS)
    current = overview.current(s, now)
    budgeted = [c for c in current if c.budget is not None]
    top_tags = slow_figure(
        "top_tags",
        lambda: [
            list(row)
            for row in s.execute(
                select(ContactTag.name, func.count()).group_by(ContactTag.name).order_by(func.count().desc()).limit(8)
            )
        ],
    )
    return render_template(
        "console/dashboard.html",
        statuses=statuses,
        channels=channels,
        grid=grid,
        by_status={st: sum(grid.get((st, ch), 0) for ch in CHANNELS) for st in statuses},
        contacts=s.scalar(select(func.count()).select_from(Contact)) or 0,
        reach=slow_figure("reach", lambda: overview.reach(s)),
        slow_minutes=SLOW_TTL_S // 60,
        replies_today=overview.replies_since(s, today),
        current=current,
        spent=sum((c.spent for c in current), Money(0)),
        budgeted=budgeted,
        currency=s.scalar(select(Price.currency).limit(1)),
        attention=needs_attention(current, now),
        top_tags=top_tags,
        current_days=overview.CURRENT_DAYS,
    )
