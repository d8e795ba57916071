"""The console's campaign pages through Flask's test client: list, page, live numbers, actions."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest

from campaigns import operations
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.conftest import csrf_token
from tests.web.test_console import sign_in


def launched(world: World, voters: int = 3, *, opted_out: int = 0) -> int:
    for i in range(voters):
        world.voter(f"+91980000{i:04d}", "ward=3", name=f"V{i}")
    for i in range(opted_out):
        world.voter(f"+91980001{i:04d}", "ward=3", consent="opted_out")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    return campaign.id


def post(client, path: str, data: dict[str, str] | None = None, *, token_from: str | None = None):  # type: ignore[no-untyped-def]
    token = csrf_token(client, token_from or path.rsplit("/", 1)[0])
    return client.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=True)


def flashes(page: str) -> list[str]:
    found = re.findall(r'<p class="flash (?:info|error)" role="status">([^<]*)</p>', page)
    return [html.unescape(f) for f in found]


def test_the_list_shows_status_words_counts_and_filters(world: World) -> None:
    active = launched(world, 3, opted_out=1)
    draft = world.campaign(BOOTH_SPEC, name="Hindi reminder", language="hi").id
    client = world.app.test_client()
    sign_in(world.app, client)
    page = client.get("/campaigns").get_data(as_text=True)
    assert '<a href="/campaigns">Campaigns</a>' in page  # in the navigation
    assert f'<a href="/campaigns/{active}">Booth reminder</a>' in page
    assert '<span class="badge active" data-status-badge>active</span>' in page
    assert '<span class="badge draft" data-status-badge>draft</span>' in page
    assert "0 completed of 4 · 3 pending" in page
    only_drafts = client.get("/campaigns?status=draft").get_data(as_text=True)
    assert f'href="/campaigns/{draft}"' in only_drafts and f'href="/campaigns/{active}"' not in only_drafts
    assert 'href="/campaigns?status=draft" aria-current="page">draft <span>1</span>' in only_drafts
    assert "No paused campaigns." in client.get("/campaigns?status=paused").get_data(as_text=True)
    bad = client.get("/campaigns?status=sent")
    assert bad.status_code == 422 and "status must be one of draft, ready, scheduled" in bad.get_data(as_text=True)


def test_the_campaign_page_shows_settings_numbers_reasons_and_funnel(world: World) -> None:
    campaign_id = launched(world, 3, opted_out=1)
    assert world.send(campaign_id) == {"delivered": 3}
    world.reply("+919800000000", "No")
    world.reply("+919800000000", "ABC1234567")
    client = world.app.test_client()
    sign_in(world.app, client)
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert '<span class="badge completed" data-status-badge>completed</span>' in page
    assert "booth_reminder · en · v1 (pinned at launch)" in page
    assert "booth_locator v1 · at <span" in page and "50.0 messages a second" in page
    assert '<strong data-count="completed">3</strong>' in page
    assert '<strong data-count="skipped">1</strong>' in page
    assert '<rect class="seg completed" x="0.0" y="0" width="75.0"' in page
    assert '<td class="mono">opted_out</td><td class="num">1</td>' in page
    funnel = re.findall(r"<tr><td>(\w+)</td><td class=\"num\">(\d+)</td></tr>", page)
    assert funnel == [("greeted", "0"), ("answered", "3"), ("epic_given", "1"), ("booth_shared", "1")]
    assert 'data-rate="replied">33.3%' in page
    assert 'src="/static/vendor/chart.umd.min.js"' in page and "cdn" not in page.lower()
    assert "data-action=" not in page  # viewers get no buttons
    assert 'href="/campaigns/1/export.csv"'.replace("1", str(campaign_id)) in page

    live = client.get(f"/campaigns/{campaign_id}/progress.json").get_json()
    assert live["status"] == "completed"
    assert live["progress"] == {"pending": 0, "completed": 3, "failed": 0, "skipped": 1}
    assert live["percent"]["completed"] == 75.0
    assert live["not_sent"] == {"skipped": {"opted_out": 1}, "failed": {}}
    assert live["funnel"][1] == {"step": "answered", "count": 3}
    assert client.get("/campaigns/999/progress.json", headers={"Accept": "application/json"}).status_code == 404

    export = client.get(f"/campaigns/{campaign_id}/export.csv")
    assert export.headers["Content-Disposition"] == f'attachment; filename="campaign-{campaign_id}.csv"'
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    by_phone = {r["phone"]: r for r in rows}
    assert len(rows) == 4 and by_phone["+919800000000"]["answer:epic"] == "ABC1234567"
    assert client.get(f"/campaigns/{campaign_id}/export.zip").mimetype == "application/zip"


def test_a_draft_lists_its_problems_and_can_be_checked_again(world: World) -> None:
    world.voter("+919800000001", "ward=3")
    draft = world.campaign(BOOTH_SPEC, language="hi").id
    client = world.app.test_client()
    sign_in(world.app, client, "operator")
    page = client.get(f"/campaigns/{draft}").get_data(as_text=True)
    assert "Why it is still a draft" in page and "template: booth_reminder (hi)" in page
    assert "1 contacts match (counted within the last minute)" in page
    # Counted once a minute (a million voters take most of a second): a new voter shows
    # after that, or at once when the audience itself changes.
    world.voter("+919800000002", "ward=3")
    assert "1 contacts match" in client.get(f"/campaigns/{draft}").get_data(as_text=True)
    for key in world.rt.redis.scan_iter(f"canvass:audience:{draft}:*"):
        world.rt.redis.delete(key)
    assert "2 contacts match" in client.get(f"/campaigns/{draft}").get_data(as_text=True)
    assert {"recheck", "clone", "abort"} == set(re.findall(r'data-action="(\w+)"', page))
    page = post(client, f"/campaigns/{draft}/recheck").get_data(as_text=True)
    assert flashes(page) == ["Still a draft: 1 problem(s) to fix, listed below."]
    page = post(client, f"/campaigns/{draft}/launch").get_data(as_text=True)  # no button, refused all the same
    assert flashes(page)[0].startswith(f"campaign {draft} cannot be launched:")


def test_operators_pause_resume_and_abort_and_see_refusals(world: World) -> None:
    campaign_id = launched(world, 3)
    client = world.app.test_client()
    sign_in(world.app, client, "operator")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert {"pause", "clone", "abort"} == set(re.findall(r'data-action="(\w+)"', page))
    assert 'data-confirm="Abort the campaign for good? Nothing more will be sent."' in page
    page = post(client, f"/campaigns/{campaign_id}/pause").get_data(as_text=True)
    assert flashes(page) == ["Paused: sending stops within a second."]
    assert '<span class="badge paused" data-status-badge>paused</span>' in page
    page = post(client, f"/campaigns/{campaign_id}/pause").get_data(as_text=True)
    assert flashes(page) == [
        f"campaign {campaign_id} is paused: cannot pause it (from paused it can go to aborted, active)"
    ]
    page = post(client, f"/campaigns/{campaign_id}/resume").get_data(as_text=True)
    assert flashes(page) == ["Resumed: 3 still to send."]
    page = post(client, f"/campaigns/{campaign_id}/abort").get_data(as_text=True)
    assert flashes(page) == ["Aborted: nothing more is sent."] and "data-final" in page
    page = post(client, f"/campaigns/{campaign_id}/clone").get_data(as_text=True)
    assert flashes(page) == [f"Cloned as campaign {campaign_id + 1} (ready)."]
    assert f'copy of <a href="/campaigns/{campaign_id}">' in page

    assert client.post(f"/campaigns/{campaign_id}/pause").status_code == 400  # no CSRF token
    assert client.post(f"/campaigns/{campaign_id}/explode", data={}).status_code == 404
    viewer = world.app.test_client()
    sign_in(world.app, viewer, "viewer")
    token = csrf_token(viewer, "/campaigns")
    assert viewer.post(f"/campaigns/{campaign_id}/clone", data={"csrf_token": token}).status_code == 403


def test_schedule_unschedule_launch_and_send_a_test(world: World) -> None:
    world.voter("+919800000001", "ward=3", name="Asha")
    campaign_id = world.campaign(BOOTH_SPEC).id
    client = world.app.test_client()
    sign_in(world.app, client, "operator")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'name="at" required' in page and 'name="numbers"' in page
    bad = post(client, f"/campaigns/{campaign_id}/schedule", {"at": "2099-12-01T09:00", "offset": "IST"})
    assert flashes(bad.get_data(as_text=True)) == ["UTC offset: write it as +05:30, -04:00 or Z; got 'IST'."]
    past = post(client, f"/campaigns/{campaign_id}/schedule", {"at": "2001-12-01T09:00", "offset": "+05:30"})
    assert "is in the past" in flashes(past.get_data(as_text=True))[0]
    page = post(client, f"/campaigns/{campaign_id}/schedule", {"at": "2099-12-01T09:00", "offset": "+05:30"})
    page_text = page.get_data(as_text=True)
    assert flashes(page_text) == ["Scheduled: it launches at 2099-12-01 03:30 UTC."]
    assert {"launch", "unschedule", "clone", "abort"} == set(re.findall(r'data-action="(\w+)"', page_text))
    page = post(client, f"/campaigns/{campaign_id}/unschedule").get_data(as_text=True)
    assert flashes(page) == ["Unscheduled: ready again."]

    page = post(client, f"/campaigns/{campaign_id}/test", {"numbers": "9800000001"}).get_data(as_text=True)
    assert flashes(page) == [f"Test campaign {campaign_id + 1}: 1 recipients, 1 to send in 1 batch(es)."]
    assert '<span class="tag">test</span>' in page
    page = post(client, f"/campaigns/{campaign_id}/test", {"numbers": " "}, token_from="/campaigns").get_data(
        as_text=True
    )
    assert flashes(page)[0].startswith("Test numbers: write one or more phone numbers")

    page = post(client, f"/campaigns/{campaign_id}/launch").get_data(as_text=True)
    assert flashes(page) == ["Launched: 1 recipients, 1 to send in 1 batch(es)."]


@pytest.mark.parametrize("path", ["/campaigns/9", "/campaigns/9/export.csv"])
def test_unknown_campaign_is_404(world: World, path: str) -> None:
    client = world.app.test_client()
    sign_in(world.app, client)
    assert client.get(path).status_code == 404


def test_the_page_shows_the_eta_inside_the_windows_and_warns_of_a_missed_deadline(world: World) -> None:
    import datetime as dt

    from bot.db import utcnow

    for i in range(3):
        world.voter(f"+91980000{i:04d}", "ward=3", name=f"V{i}")
    # Three voters at one an hour, polls closing in an hour: it cannot make it.
    campaign = world.campaign(BOOTH_SPEC, pace_per_s=1 / 3600, deadline=utcnow() + dt.timedelta(hours=1))
    operations.launch(world.rt, campaign.id)
    client = world.app.test_client()
    sign_in(world.app, client)
    live = client.get(f"/campaigns/{campaign.id}/progress.json").get_json()
    assert 3 * 3600 - 60 <= live["seconds_left"] <= 3 * 3600
    assert live["eta_warning"].startswith("cannot finish before the deadline")
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "left at this pace, inside the send windows" in page
    warning = re.search(r"<p class=\"warnings\" role=\"status\" data-eta-warning>([^<]*)</p>", page)
    assert warning and "cannot finish before the deadline" in warning.group(1)
