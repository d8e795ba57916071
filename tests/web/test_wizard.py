"""The campaign wizard through Flask's test client: every step, its errors, roles, CSRF, going back.

Runs on SQLite and PostgreSQL (the ``world`` fixture: flows, sandbox senders, the example
templates with booth_reminder's English version approved).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

from sqlalchemy import func, select

from bot.models import Sender
from campaigns import operations, pricing
from campaigns.models import Campaign
from tests.campaigns.conftest import BOOTH_SPEC, WHATSAPP, World
from tests.conftest import csrf_token
from tests.web.test_console import sign_in


def sender_id(world: World, address: str = WHATSAPP, channel: str = "whatsapp") -> int:
    with world.rt.db.session() as db:
        found = db.scalar(select(Sender.id).where(Sender.address == address, Sender.channel == channel))
        assert found is not None
        return found


def campaigns(world: World) -> int:
    with world.rt.db.session() as db:
        return db.scalar(select(func.count()).select_from(Campaign)) or 0


def post(client, path: str, data: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Post a step's form with the CSRF token of its page."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, path)})


def field_error(page: str, field: str) -> str:
    """The error shown under a form field (empty when none)."""
    fid = re.sub(r"[.\[]", "-", field).replace("]", "")
    found = re.search(rf'<p class="field-error" id="err-{re.escape(fid)}">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else ""


def basics(world: World, **changes: str) -> dict[str, str]:
    return {"name": "Ward 3 reminder", "channel": "whatsapp", "sender": str(sender_id(world)), "kind": "real"} | changes


def new_draft(world: World, client) -> int:  # type: ignore[no-untyped-def]
    answer = post(client, "/campaigns/new", basics(world))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    found = re.match(r".*/campaigns/(\d+)/edit/audience$", answer.headers["Location"])
    assert found, answer.headers["Location"]
    return int(found.group(1))


def operator(world: World):  # type: ignore[no-untyped-def]
    client = world.app.test_client()
    sign_in(world.app, client, "operator")
    return client


def test_a_whatsapp_campaign_through_every_step(world: World) -> None:
    for i in range(3):
        world.voter(f"+91980000{i:04d}", "ward=3", name=f"V{i}")
    world.voter("+919800009999", "ward=4", name="Elsewhere")
    client = operator(world)
    listing = client.get("/campaigns").get_data(as_text=True)
    assert '<a class="button" href="/campaigns/new">New campaign</a>' in listing
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert '<li class="current" aria-current="step">' in page and f'value="{sender_id(world)}"' in page

    cid = new_draft(world, client)
    c = world.get(cid)
    assert (c.name, c.channel, c.sender_id, c.status, c.segment) == (
        "Ward 3 reminder",
        "whatsapp",
        sender_id(world),
        "draft",
        None,
    )
    assert "audience: required (a segment, or all)" in c.problems

    base = f"/campaigns/{cid}/edit"
    count = client.get(f"{base}/audience/count?include=ward%3D3&consent=not_opted_out").get_json()
    assert count == {"count": 3, "text": "3 contacts"}
    answer = post(client, f"{base}/audience", {"include": "ward=3", "match": "all", "consent": "not_opted_out"})
    assert answer.headers["Location"].endswith(f"{base}/message")
    assert world.get(cid).segment == {"all": [{"tag": "ward", "eq": "3"}, {"not": {"consent": "opted_out"}}]}

    page = client.get(f"{base}/message").get_data(as_text=True)
    assert ">booth_reminder · en</option>" in page and "booth_reminder · hi" not in page  # approved only
    with world.rt.db.session() as db:
        template_id = db.get(Campaign, cid).template_id  # type: ignore[union-attr]
    assert template_id is None
    answer = post(client, f"{base}/message", {"template": "1:en", "go": "pick"})
    assert answer.headers["Location"].endswith(f"{base}/message")
    page = client.get(f"{base}/message").get_data(as_text=True)
    assert 'name="variables.1.kind"' in page and 'name="variables.2.kind"' in page
    answer = post(
        client,
        f"{base}/message",
        {
            "template": "1:en",
            "variables.1.kind": "contact:name",
            "variables.1.default": "voter",
            "variables.2.kind": "tag",
            "variables.2.value": "ward",
        },
    )
    assert answer.headers["Location"].endswith(f"{base}/flow"), answer.get_data(as_text=True)
    assert world.get(cid).variables == {"1": {"contact": "name", "default": "voter"}, "2": {"tag": "ward"}}
    page = client.get(f"{base}/message").get_data(as_text=True)
    assert "Namaste V0! Polling in ward 3" in page  # the preview, as the first voter gets it

    page = client.get(f"{base}/flow").get_data(as_text=True)
    assert 'href="/flows/booth_locator"' in page and 'name="at.booth_locator"' in page
    answer = post(client, f"{base}/flow", {"flow": "booth_locator", "at.booth_locator": "knows"})
    assert answer.headers["Location"].endswith(f"{base}/schedule")
    assert (world.get(cid).flow_name, world.get(cid).flow_node, world.get(cid).status) == (
        "booth_locator",
        "knows",
        "ready",
    )

    page = client.get(f"{base}/schedule").get_data(as_text=True)
    assert 'name="timezone" value="UTC"' in page and 'name="pace" value="1"' in page
    answer = post(
        client,
        f"{base}/schedule",
        {"timezone": "Asia/Kolkata", "when": "now", "pace": "50", "pace_unit": "s", "window": "india_election"},
    )
    assert answer.headers["Location"].endswith(f"{base}/budget")
    c = world.get(cid)
    assert (c.pace_per_s, c.send_windows, c.scheduled_at, c.blackouts) == (50.0, ["india_election"], None, [])

    with world.rt.db.session() as db:
        pricing.set_price(db, "whatsapp", "91", "0.0107", "USD")
    page = client.get(f"{base}/budget").get_data(as_text=True)
    assert "<dd data-voters>3</dd>" in page and "<dd data-cost>0.0321 USD</dd>" in page
    answer = post(client, f"{base}/budget", {"budget": "0.02"})
    assert answer.headers["Location"].endswith(f"{base}/review")
    assert world.get(cid).budget_micros == 20_000

    page = client.get(f"{base}/review").get_data(as_text=True)
    assert "Save &amp; launch" in page and "Still missing" not in page
    assert "the estimate 0.0321 USD is over the budget 0.02" in html.unescape(page)
    answer = post(client, f"{base}/review", {"go": "launch"})
    assert answer.headers["Location"].endswith(f"/campaigns/{cid}")
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    # 0.02 covers one voter at 0.0107: the other two are past the cap.
    assert "Launched: 3 recipients, 1 to send in 1 batch(es); skipped: over_budget 2." in html.unescape(page)
    assert world.get(cid).status == "active"
    again = client.get(f"{base}/schedule")
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/campaigns/{cid}")
    assert "only drafts and ready campaigns can be edited" in client.get(f"/campaigns/{cid}").get_data(as_text=True)


def test_errors_are_shown_next_to_their_fields_and_nothing_typed_is_lost(world: World) -> None:
    world.voter("+919800000001", "ward=3")
    client = operator(world)
    answer = post(client, "/campaigns/new", basics(world, name=" ", description="keep me"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and campaigns(world) == 0
    assert field_error(page, "name") == "a name of 1 to 120 characters is required"
    assert "keep me</textarea>" in page and 'aria-invalid="true" aria-describedby="err-name"' in page
    page = post(client, "/campaigns/new", basics(world, kind="test", test_numbers="12, 9800000009")).get_data(
        as_text=True
    )
    assert campaigns(world) == 0
    assert "'12'" in field_error(page, "test_numbers") and "9800000009 is not a contact" in field_error(
        page, "test_numbers"
    )
    page = post(client, "/campaigns/new", basics(world, channel="sms")).get_data(as_text=True)
    assert field_error(page, "sender") == f"{WHATSAPP} is a whatsapp sender, the campaign is sms"

    cid = new_draft(world, client)
    base = f"/campaigns/{cid}/edit"
    answer = post(client, f"{base}/audience", {"include": "ward=3, bad tag!", "consent": "any"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "tag name 'bad tag!'" in field_error(page, "include")
    assert 'value="ward=3, bad tag!"' in page and world.get(cid).segment is None
    page = post(client, f"{base}/audience", {"advanced": "all: [{tag: ward, oops: 1}]"}).get_data(as_text=True)
    assert field_error(page, "audience") == (
        "all[0].oops: unknown operator; use one of eq, ne, in, not_in, prefix, exists"
    )
    bad = client.get(f"{base}/audience/count?include=%21").get_json()
    assert bad["count"] is None and bad["field"] == "include"

    post(client, f"{base}/message", {"template": "1:en", "go": "pick"})
    answer = post(
        client,
        f"{base}/message",
        {"template": "1:en", "variables.1.kind": "text", "variables.2.kind": "tag", "variables.2.value": "ward"},
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and field_error(page, "variables.1") == "must be non-empty text"
    assert world.get(cid).variables == {}

    answer = post(
        client,
        f"{base}/schedule",
        {
            "timezone": "Mars/Olympus",
            "when": "at",
            "at": "2001-01-01T09:00",
            "pace": "fast",
            "pace_unit": "s",
            "window_start": "25:00",
            "window_end": "21:00",
            "blackouts[0].from": "2099-11-18T18:00",
            "blackouts[0].to": "2099-11-18T17:00",
            "deadline": "",
        },
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert field_error(page, "timezone") == "unknown time zone 'Mars/Olympus' (e.g. Asia/Kolkata, UTC)"
    assert field_error(page, "schedule") == "it is in the past: choose a later time, or send now"
    assert field_error(page, "pace") == "write it as 10/s, 600/h or 30/min; got 'fast/s'"
    assert field_error(page, "send_window") == "a time of day such as 09:00, got '25:00'"
    assert field_error(page, "blackouts") == "a blackout must end after it starts"
    assert 'value="2099-11-18T18:00"' in page and world.get(cid).pace_per_s == 1.0

    answer = post(client, f"{base}/budget", {"budget": "-1"})
    assert field_error(answer.get_data(as_text=True), "budget") == "a number of 0 or more, got '-1'"
    answer = post(client, f"{base}/budget", {"budget": "5"})  # no WhatsApp price to count it with
    assert field_error(answer.get_data(as_text=True), "budget").startswith("no whatsapp prices to count it with")
    assert world.get(cid).budget_micros is None


def test_going_back_shows_what_was_saved_and_edit_opens_any_step(world: World) -> None:
    world.voter("+919800000001", "ward=3", "volunteer")
    client = operator(world)
    cid = new_draft(world, client)
    base = f"/campaigns/{cid}/edit"
    audience = {"include": "ward=3|4, volunteer", "match": "any", "exclude": "staff", "consent": "opted_in"}
    answer = post(client, f"{base}/audience", {**audience, "go": "back"})
    assert answer.headers["Location"].endswith(f"{base}/basics")
    page = client.get(f"{base}/basics").get_data(as_text=True)
    assert 'value="Ward 3 reminder"' in page and f'<option value="{sender_id(world)}" selected' in page
    page = client.get(f"{base}/audience").get_data(as_text=True)
    for name, value in (("include", "ward=3|4, volunteer"), ("exclude", "staff")):
        assert f'name="{name}" value="{value}"' in page
    assert 'value="any" checked' in page and '<option value="opted_in" selected' in page
    assert "<strong data-audience-count>0 contacts</strong>" in page  # the one voter has not opted in

    post(client, f"{base}/schedule", {"timezone": "Asia/Kolkata", "when": "at", "at": "2099-12-01T09:00",
                                      "pace": "600", "pace_unit": "h", "window_start": "09:00",
                                      "window_end": "20:00", "blackouts[0].from": "2099-11-30T18:00",
                                      "blackouts[0].to": "2099-12-01T06:00", "blackouts[0].tag": "ward",
                                      "blackouts[0].value": "3", "deadline": "2099-12-02T18:00"})  # fmt: skip
    c = world.get(cid)
    assert c.scheduled_at == dt.datetime(2099, 12, 1, 3, 30, tzinfo=dt.UTC) and c.pace_per_s == 600 / 3600
    assert c.send_windows == [{"start": "09:00", "end": "20:00"}]
    assert c.blackouts[0]["tag"] == "ward" and c.deadline == dt.datetime(2099, 12, 2, 12, 30, tzinfo=dt.UTC)
    # Shown again in the audience's zone (UTC: the voter has none), the same moments.
    page = client.get(f"{base}/schedule").get_data(as_text=True)
    assert 'name="at" type="datetime-local" value="2099-12-01T03:30"' in page
    assert 'name="pace" value="10"' in page and '<option value="min" selected' in page
    assert 'name="blackouts[0].from" value="2099-11-30T12:30"' in page and 'name="blackouts[1].from" value=""' in page

    page = client.get(f"/campaigns/{cid}").get_data(as_text=True)
    assert f'href="/campaigns/{cid}/edit" data-edit>Edit</a>' in page
    assert client.get(f"/campaigns/{cid}/edit").headers["Location"].endswith(f"{base}/basics")
    for step in ("flow", "budget", "review", "message"):
        assert client.get(f"{base}/{step}").status_code == 200, step
    review = client.get(f"{base}/review").get_data(as_text=True)
    assert "Still missing before it can launch" in review and "template: required" in review
    assert "Save &amp; launch" not in review and 'value="draft"' in review
    answer = post(client, f"{base}/review", {"go": "draft"})
    assert answer.headers["Location"].endswith(f"/campaigns/{cid}")
    assert client.get(f"{base}/nowhere").status_code == 404


def test_a_saved_segment_is_an_audience_choice_beside_the_tags(world: World) -> None:
    from bot import saved_segments

    world.voter("+919800000001", "ward=3", "volunteer")
    world.voter("+919800000002", "ward=3")
    world.voter("+919800000003", "ward=4", "volunteer")
    with world.rt.db.session() as db:
        saved_segments.save(db, "Ward 3", {"tag": "ward", "eq": "3"}, by=None)
        db.commit()
    client = operator(world)
    cid = new_draft(world, client)
    base = f"/campaigns/{cid}/edit"
    page = client.get(f"{base}/audience").get_data(as_text=True)
    assert '<option value="Ward 3">Ward 3 · ward = 3</option>' in page
    found = client.get(f"{base}/audience/count?saved=Ward+3&include=volunteer&consent=any").get_json()
    assert found["count"] == 1
    missing = client.get(f"{base}/audience/count?saved=Gone&consent=any").get_json()
    assert missing["count"] is None and "there is no saved segment named 'Gone'" in missing["error"]

    answer = post(client, f"{base}/audience", {"saved": "Ward 3", "include": "volunteer", "consent": "not_opted_out"})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert world.get(cid).segment == {
        "all": [{"segment": "Ward 3"}, {"tag": "volunteer"}, {"not": {"consent": "opted_out"}}]
    }
    page = client.get(f"{base}/audience").get_data(as_text=True)
    assert '<option value="Ward 3" selected>Ward 3 · ward = 3' in page and 'name="include" value="volunteer"' in page
    assert "<strong data-audience-count>1 contact</strong>" in page
    page = client.get(f"{base}/review").get_data(as_text=True)
    assert "voters in the saved segment “Ward 3” with volunteer" in page


def test_a_call_campaign_sets_call_options_instead_of_a_template(world: World) -> None:
    with world.rt.db.session() as db:
        db.add(Sender(provider="sandbox", channel="voice", address="+919999900003", healthy=True, rate_per_s=5))
    voice = sender_id(world, "+919999900003", "voice")
    client = operator(world)
    cid = new_draft_of(client, world, channel="voice", sender=str(voice))
    base = f"/campaigns/{cid}/edit"
    page = client.get(f"{base}/message").get_data(as_text=True)
    assert "Call options" in page and 'name="template"' not in page
    answer = post(client, f"{base}/message", {"voice.attempts": "11", "voice.on_machine": "message"})
    page = answer.get_data(as_text=True)
    assert field_error(page, "voice.attempts") == "a whole number from 1 to 10, got 11"
    answer = post(
        client,
        f"{base}/message",
        {"voice.attempts": "2", "voice.retry_after": "2h", "voice.on_machine": "hangup", "voice.opt_out_digit": "9"},
    )
    assert answer.status_code == 302
    options = world.get(cid).voice or {}
    assert (options["attempts"], options["retry_after_s"], options["machine_detection"], options["opt_out_digit"]) == (
        2,
        7200,
        True,
        "9",
    )
    page = client.get(f"{base}/flow").get_data(as_text=True)
    assert re.search(r'value="booth_locator"\s+disabled', page)  # a messaging flow cannot answer a call
    answer = post(client, f"{base}/flow", {"flow": "booth_locator"})
    assert field_error(answer.get_data(as_text=True), "flow") == "booth_locator runs on whatsapp, sms, not voice"


def new_draft_of(client, world: World, **changes: str) -> int:  # type: ignore[no-untyped-def]
    answer = post(client, "/campaigns/new", basics(world, **changes))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return int(answer.headers["Location"].split("/")[2])


def test_review_warns_and_sends_a_test(world: World) -> None:
    world.voter("+919800000001", "ward=3", name="Asha")
    world.voter("+12025550123", "ward=3", name="Abroad")
    with world.rt.db.session() as db:
        pricing.set_price(db, "whatsapp", "91", "0.01", "USD")
    c = world.campaign(BOOTH_SPEC, pace_per_s=0.001, deadline=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10))
    client = operator(world)
    page = html.unescape(client.get(f"/campaigns/{c.id}/edit/review").get_data(as_text=True))
    assert "1 voter(s) are in countries without a whatsapp price: they count as free" in page
    assert "cannot finish before the deadline" in page and "2 left at 0.001/s" in page
    answer = post(client, f"/campaigns/{c.id}/edit/review", {"go": "test", "numbers": "9800000001"})
    page = html.unescape(client.get(answer.headers["Location"]).get_data(as_text=True))
    assert f"Test campaign {c.id + 1}: 1 recipients, 1 to send in 1 batch(es)." in page


def test_viewers_cannot_use_the_wizard_and_forms_need_csrf(world: World) -> None:
    world.voter("+919800000001", "ward=3")
    c = world.campaign(BOOTH_SPEC)
    viewer = world.app.test_client()
    sign_in(world.app, viewer, "viewer")
    assert "New campaign" not in viewer.get("/campaigns").get_data(as_text=True)
    assert "data-edit" not in viewer.get(f"/campaigns/{c.id}").get_data(as_text=True)
    token = csrf_token(viewer, "/campaigns")
    for path in ("/campaigns/new", f"/campaigns/{c.id}/edit/basics", f"/campaigns/{c.id}/edit/review"):
        assert viewer.get(path).status_code == 403, path
        assert viewer.post(path, data={**basics(world), "csrf_token": token}).status_code == 403, path
    assert viewer.get(f"/campaigns/{c.id}/edit/audience/count").status_code == 403
    client = operator(world)
    assert client.post("/campaigns/new", data=basics(world)).status_code == 400  # no CSRF token
    assert client.post(f"/campaigns/{c.id}/edit/review", data={"go": "launch"}).status_code == 400
    assert campaigns(world) == 1 and world.get(c.id).status == "ready"
    operations.launch(world.rt, c.id)
    mine = csrf_token(client, "/campaigns")
    refused = client.post(f"/campaigns/{c.id}/edit/basics", data={**basics(world), "csrf_token": mine})
    assert refused.status_code == 302 and world.get(c.id).name == "Booth reminder"
