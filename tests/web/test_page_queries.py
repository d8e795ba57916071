"""The console's busiest pages issue a fixed number of SQL statements, whatever the data.

Each page is fetched on a small world and on one ten times larger (campaigns,
recipients, replies, tags, timeline entries, cases, assignees); the statement counts
must be the same, so a query per row (an N+1) cannot come back unnoticed. Runs on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from bot import flowlibrary
from bot.models import ConsentEvent, HandoffCase, Message
from campaigns import operations
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.web.statements import counted
from tests.web.test_console import sign_in
from web.models import User
from web.users import create_user

BASE = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _flows_stay_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    # The newest flow versions are read again every two seconds; a slow run must not
    # count that read on one side only.
    monkeypatch.setattr(flowlibrary, "FRESH_S", 3600.0)


def statements(world: World, client: Any, path: str) -> list[str]:
    """The statements of one request of ``path``, after a first one that fills the caches."""
    assert client.get(path).status_code == 200
    with counted(world.rt.db.engine) as found:
        assert client.get(path).status_code == 200
    return found


def sent_campaign(world: World, drive: str, voters: int, *, replies: int, opted_out: int = 0) -> int:
    """A campaign to the voters tagged ``drive=<drive>``, sent, with some replies and skips."""
    block = {"small": 1, "large": 2, "first": 3, "second": 4}[drive]
    phones = [f"+91980{block}{i:06d}" for i in range(voters + opted_out)]
    for n, phone in enumerate(phones):
        tags = ["ward=3", f"drive={drive}", *(f"interest{k}" for k in range(n % 4))]
        world.voter(phone, *tags, name=f"V{n}", consent="opted_out" if n >= voters else None)
    campaign = world.campaign(BOOTH_SPEC, name=f"Drive {drive}", segment={"tag": "drive", "eq": drive}).id
    operations.launch(world.rt, campaign)
    world.send(campaign)
    for phone in phones[:replies]:
        world.reply(phone, "No")
        world.reply(phone, "ABC1234567")
    return campaign


def test_the_campaign_page_and_its_numbers_do_not_grow_with_recipients(world: World) -> None:
    client = world.app.test_client()
    sign_in(world.app, client, "admin")
    small = sent_campaign(world, "small", 3, replies=1)
    large = sent_campaign(world, "large", 30, replies=10, opted_out=3)
    assert world.get(small).status == world.get(large).status
    for path in ("/campaigns/{}", "/campaigns/{}/progress.json"):
        few = statements(world, client, path.format(small))
        many = statements(world, client, path.format(large))
        assert len(many) == len(few), (path, few, many)
    page = client.get(f"/campaigns/{large}").get_data(as_text=True)
    assert '<strong data-count="completed">30</strong>' in page  # the large world is really there


def test_the_campaigns_list_does_not_grow_with_campaigns(world: World) -> None:
    client = world.app.test_client()
    sign_in(world.app, client, "admin")
    sent_campaign(world, "first", 3, replies=1)
    for n in range(2):
        world.campaign(BOOTH_SPEC, name=f"Draft {n}")
    few = statements(world, client, "/campaigns")
    sent_campaign(world, "second", 12, replies=2, opted_out=2)
    for n in range(26):
        world.campaign(BOOTH_SPEC, name=f"More {n}", language="hi" if n % 2 else "en")
    many = statements(world, client, "/campaigns")
    assert len(many) == len(few), (few, many)
    assert client.get("/campaigns").get_data(as_text=True).count('<a href="/campaigns/') == 30


def voter_with(world: World, phone: str, size: int) -> int:
    """A voter with ``size`` tags, messages, consent changes and closed cases, and one open case."""
    contact_id = world.voter(phone, *(f"t{k}={k}" for k in range(size)), name="Asha")
    with world.rt.db.session() as s:
        for k in range(size):
            at = BASE + dt.timedelta(minutes=k)
            s.add(Message(contact_id=contact_id, direction="in", channel="whatsapp", body=f"m{k}", status="received"))
            s.add(ConsentEvent(contact_id=contact_id, status="opted_in", source="keyword", created_at=at))
            s.add(HandoffCase(contact_id=contact_id, status="closed", note=f"n{k}", opened_at=at, closed_at=at))
        s.add(HandoffCase(contact_id=contact_id, status="open", opened_at=BASE))
    return contact_id


def test_the_voter_page_does_not_grow_with_tags_and_timeline(world: World) -> None:
    client = world.app.test_client()
    sign_in(world.app, client, "admin")
    few = statements(world, client, f"/contacts/{voter_with(world, '+919800000001', 3)}")
    large = voter_with(world, "+919800000002", 30)
    many = statements(world, client, f"/contacts/{large}")
    assert len(many) == len(few), (few, many)
    page = client.get(f"/contacts/{large}").get_data(as_text=True)
    assert page.count('data-kind="message"') == 30 and "t29=29" in page


def cases(world: World, first: int, count: int, me: int) -> None:
    """``count`` open cases (half of them mine, the rest with other agents), each voter with a message."""
    with world.rt.db.session() as s:
        agents = [create_user(s, f"agent{first + k}@example.org", "operator", None).id for k in range(count)]
    for k in range(count):
        contact_id = world.voter(f"+91970000{first + k:04d}", "ward=3")
        with world.rt.db.session() as s:
            s.add(Message(contact_id=contact_id, direction="in", channel="sms", body="help", status="received"))
            assignee = me if k % 2 == 0 else agents[k]
            s.add(HandoffCase(contact_id=contact_id, status="open", assignee_id=assignee, opened_at=BASE))
            s.add(HandoffCase(contact_id=contact_id, status="closed", assignee_id=agents[k], opened_at=BASE))


def test_the_inbox_does_not_grow_with_cases_or_agents(world: World) -> None:
    client = world.app.test_client()
    sign_in(world.app, client, "admin")
    with world.rt.db.session() as s:
        me = s.scalars(select(User.id)).one()
    tabs = ("/inbox", "/inbox?tab=all", "/inbox?tab=closed")
    cases(world, 0, 3, me)
    few = [statements(world, client, tab) for tab in tabs]
    cases(world, 100, 27, me)
    many = [statements(world, client, tab) for tab in tabs]
    assert [len(s) for s in many] == [len(s) for s in few], (few, many)
    assert client.get("/inbox?tab=all").get_data(as_text=True).count('href="/inbox/') >= 30
