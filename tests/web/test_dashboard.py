"""The dashboard: campaigns by status, reach, spend against budget, replies today, needs attention."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, insert, select, update

from bot.db import utcnow
from bot.models import Contact, HandoffCase, Message, Sender
from campaigns.models import Campaign, Recipient, Template, TemplateVersion
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.web.test_admin import signed_in


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">([^<]+)<', html)
    assert match, f"no figure {name}"
    return match.group(1)


def attention(html: str) -> list[str]:
    block = html.split('id="attention-h"', 1)[1].split("</section>", 1)[0]
    return [re.sub(r"<[^>]+>", "", item).strip() for item in re.findall(r"<li[^>]*>(.*?)</li>", block, re.S)]


def campaign(world: World, status: str, rows: dict[str, int], **values: Any) -> int:
    """A campaign of BOOTH_SPEC moved to ``status``, with recipient rows of the given statuses."""
    made = world.campaign(BOOTH_SPEC)
    with world.rt.db.session() as s:
        s.execute(update(Campaign).where(Campaign.id == made.id).values(status=status, **values))
        contacts = s.scalars(select(Contact.id).order_by(Contact.id)).all()
        assert sum(rows.values()) <= len(contacts)
        it = iter(contacts)
        batch = [
            {"campaign_id": made.id, "contact_id": next(it), "channel": "whatsapp", "status": st, "cost_micros": 10_000}
            for st, n in rows.items()
            for _ in range(n)
        ]
        if batch:
            s.execute(insert(Recipient), batch)
    return made.id


@contextmanager
def counted(world: World) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(world.rt.db.engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(world.rt.db.engine, "before_cursor_execute", note)


def test_dashboard_figures_and_what_needs_attention(world: World) -> None:
    for i in range(40):
        world.voter(f"+9198000{i:05d}", "ward=3")
    now = utcnow()
    busy = campaign(world, "active", {"sent": 10, "delivered": 8, "pending": 5}, launched_at=now, budget_micros=500_000)
    failing = campaign(world, "completed", {"delivered": 18, "failed": 4}, launched_at=now - dt.timedelta(days=2))
    stalled = campaign(world, "active", {"pending": 6}, launched_at=now - dt.timedelta(hours=1))
    campaign(world, "paused", {"read": 3}, launched_at=now)
    campaign(world, "ended", {"read": 30}, launched_at=now - dt.timedelta(days=90))  # old: no spend counted
    campaign(world, "draft", {})
    with world.rt.db.session() as s:
        # The failing campaign's rows overlap the busy one's voters: reach counts each voter once.
        s.execute(update(Recipient).where(Recipient.campaign_id == busy).values(sent_at=now))
        template = s.scalar(select(Template.id).where(Template.name == "turnout_sms"))
        s.execute(
            update(TemplateVersion)
            .where(TemplateVersion.template_id == template)
            .values(status="rejected", status_reason="variables at the start of the body")
        )
        voter = s.scalar(select(Contact.id))
        s.add(HandoffCase(contact_id=voter, status="open", opened_at=now - dt.timedelta(minutes=30)))
        s.add(HandoffCase(contact_id=voter, status="closed", opened_at=now - dt.timedelta(days=1)))
        s.add(Message(contact_id=voter, direction="in", channel="whatsapp", body="1", status="received"))
        s.add(
            Message(
                contact_id=voter,
                direction="in",
                channel="whatsapp",
                body="old",
                status="received",
                created_at=now - dt.timedelta(days=1, hours=1),
            )
        )
        s.add(Message(contact_id=voter, direction="out", channel="whatsapp", body="hi", status="sent"))
        sms = s.scalar(select(Sender).where(Sender.channel == "sms"))
        assert sms is not None
        sms.healthy, sms.health_note = False, "number blocked"

    viewer = signed_in(world.app, "viewer")
    html = viewer.get("/").get_data(as_text=True)
    assert figure(html, "active") == "2"
    assert figure(html, "reach") == "30"  # 10 sent + 8 delivered + 18 delivered + 3 read + 30 read, over 30 voters
    assert figure(html, "replies") == "1"  # since midnight UTC, inbound only
    # Spend: campaigns of the last 30 days, the rows the provider took at 0.01 each (10+8, 18, 3;
    # failed ones are not charged).
    assert figure(html, "spent") == "0.39"
    assert re.search(r'data-status="active">.*?<td class="num">2</td>', html, re.S)
    assert re.search(r'data-status="draft">.*?<td class="num">1</td>', html, re.S)
    assert 'Booth reminder</a></td><td><span class="badge active">active</span></td>' in html
    assert '0.18</td><td class="num">0.50</td>' in html  # spent against the budget of 0.5
    found = attention(html)
    assert "campaign Booth reminder: 4 of 22 messages failed (18%)." in found
    assert any("6 voters still to send and nothing sent for 15 minutes" in f for f in found)
    assert not any("5 voters still to send" in f for f in found)  # the busy one sent just now
    assert any("Template turnout_sms (en) was rejected: variables at the start of the body." in f for f in found)
    assert any("1 voter(s) wait for a person (1 not taken)" in f for f in found)
    assert any("Sender sms +919999900002 is unhealthy: number blocked." in f for f in found)
    assert any("The scheduler has not been seen" in f for f in found)
    assert any("No worker is running" in f for f in found)
    assert f'href="/campaigns/{failing}"' in html and f'href="/campaigns/{stalled}"' in html
    assert 'src="/static/vendor/chart.umd.min.js"' in html


def test_dashboard_queries_do_not_grow_with_campaigns(world: World) -> None:
    for i in range(10):
        world.voter(f"+9198000{i:05d}", "ward=3")
    viewer = signed_in(world.app, "viewer")
    campaign(world, "active", {"sent": 2, "pending": 2}, launched_at=utcnow())
    with counted(world) as few:
        assert viewer.get("/").status_code == 200
    forget_slow_figures(world)
    for status in ("active", "paused", "completed", "active", "scheduled"):
        campaign(world, status, {"sent": 3, "failed": 1, "pending": 1}, launched_at=utcnow(), budget_micros=1)
    with counted(world) as many:
        assert viewer.get("/").status_code == 200
    assert len(many) == len(few), "the dashboard's queries must not grow with the number of campaigns"
    # The figures over the whole history are counted once for every process, then kept a while.
    with counted(world) as cached:
        assert viewer.get("/").status_code == 200
    assert len(cached) == len(few) - 2


def forget_slow_figures(world: World) -> None:
    for key in world.rt.redis.scan_iter("canvass:dashboard:*"):
        world.rt.redis.delete(key)


def test_a_quiet_dashboard_says_nothing_needs_attention(world: World) -> None:
    import worker

    worker.run_scheduler(rt=world.rt, once=True)  # the heartbeat
    from rq import Worker

    registered = Worker(["default"], connection=world.rt.redis, name="dashboard-test-worker")
    registered.register_birth()
    try:
        html = signed_in(world.app, "viewer").get("/").get_data(as_text=True)
    finally:
        registered.register_death()
    assert attention(html) == []
    assert "Nothing: no failing or stalled campaign" in html
    assert figure(html, "reach") == "0" and figure(html, "spent") == "0.00"
