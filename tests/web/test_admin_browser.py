"""The dashboard and the administration pages in a real headless Chromium, with screenshots.

Screenshots at a laptop width (1280) and a phone width (390); the folder is printed at the
end of the run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.db import utcnow
from bot.models import PolicyBlackout, Sender
from campaigns.models import Campaign, Price
from tests.campaigns.conftest import World
from tests.web.browser import LAPTOP, PHONE
from tests.web.test_dashboard import campaign


def page_width(page: Any) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


def menu(page: Any, name: str) -> None:
    """Follow a link of the administration's menu."""
    page.get_by_role("navigation", name="Administration").get_by_role("link", name=name).click()


def expected_422(watched: Any) -> list[str]:
    """The page's problems, but for the refused forms (422, on purpose)."""
    return [p for p in watched.problems if not p.startswith("422 ")]


def busy_world(world: World) -> None:
    for i in range(40):
        world.voter(f"+9198000{i:05d}", "ward=3")
    now = utcnow()
    campaign(world, "active", {"sent": 12, "delivered": 9, "pending": 8}, launched_at=now, budget_micros=400_000)
    campaign(world, "completed", {"delivered": 20, "failed": 6}, launched_at=now - dt.timedelta(days=1))
    campaign(world, "active", {"pending": 5}, launched_at=now - dt.timedelta(hours=2))
    campaign(world, "scheduled", {})
    campaign(world, "draft", {})
    campaign(world, "ended", {"read": 3}, launched_at=now - dt.timedelta(days=3))
    sms = campaign(world, "paused", {"sent": 4}, launched_at=now)
    with world.rt.db.session() as s:
        s.execute(update(Campaign).where(Campaign.id == sms).values(channel="sms", name="Turnout SMS"))


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_dashboard_draws_its_chart_and_lists_what_needs_attention(
    world: World, open_console, shots, viewport: dict[str, int]
) -> None:  # type: ignore[no-untyped-def]
    busy_world(world)
    watched = open_console("viewer", viewport)
    page = watched.page
    holder = page.locator("[data-status-chart]")
    holder.wait_for(state="visible")
    # Chart.js drew on the canvas (it keeps its instance for the canvas).
    assert page.evaluate("() => !!window.Chart.getChart(document.getElementById('status-chart'))")
    labels = page.evaluate("() => window.Chart.getChart(document.getElementById('status-chart')).data.labels")
    assert labels[:4] == ["draft", "ready", "scheduled", "active"]
    channels = page.evaluate(
        "() => window.Chart.getChart(document.getElementById('status-chart')).data.datasets.map(d => d.label)"
    )
    assert channels == ["whatsapp", "sms"]
    items = page.locator(".attention-list li")
    assert items.count() >= 4
    texts = items.all_inner_texts()
    assert any("6 of 26 messages failed" in t for t in texts)
    assert any("nothing sent for 15 minutes" in t for t in texts)
    assert page.locator("[data-figure='active']").inner_text() == "2"
    shots(page, "dashboard")
    assert page_width(page) <= viewport["width"], "the dashboard must not scroll sideways"
    assert watched.problems == []


def test_an_admin_manages_senders_providers_send_policy_and_prices(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    watched = open_console("admin")
    page = watched.page
    page.get_by_role("link", name="Admin").click()
    page.wait_for_url("**/admin/users")
    assert page.locator("h1").inner_text().startswith("Users")
    shots(page, "admin-users")
    page.locator("tr", has_text="admin@example.org").get_by_role("link", name="manage").click()
    page.get_by_role("button", name="Issue a token").click()
    token = page.locator("[data-secret='token']").inner_text()
    assert token.startswith("cvs_") and page.locator("td.mono", has_text=token[:10]).count() == 1
    assert page.get_by_role("button", name="Deactivate").is_disabled()  # not yourself
    shots(page, "admin-user")

    # Senders: a mistake is named next to its field and what was typed stays.
    menu(page, "Senders")
    page.get_by_label("Number", exact=True).fill("+91 99999 00077")
    page.get_by_label("Channel").select_option("voice")
    page.get_by_label("Rate (per second)", exact=True).fill("lots")
    page.get_by_role("button", name="Add sender").click()
    assert "rate: a number of messages per second" in page.locator("#rate-error").inner_text()
    assert page.get_by_label("Number", exact=True).input_value() == "+91 99999 00077"
    page.locator("input[name=rate]").fill("2")  # its label now also reads the error
    page.get_by_label("Label (optional)").fill("Pune calls")
    page.get_by_role("button", name="Add sender").click()
    page.wait_for_url("**/admin/senders")
    row = page.locator("tr", has_text="+919999900077")
    assert "voice" in row.inner_text() and "healthy" in row.inner_text()
    page.locator("tr", has_text="+919999900002").get_by_role("link", name="edit").click()
    page.get_by_label("Why is it unhealthy?").fill("blocked by the operator")
    page.get_by_role("button", name="Mark unhealthy").click()
    assert page.locator("h2", has_text="Health").inner_text().endswith("unhealthy")
    menu(page, "Senders")
    shots(page, "admin-senders")
    with world.rt.db.session() as s:
        assert s.scalar(select(Sender.healthy).where(Sender.address == "+919999900002")) is False

    # Providers: what is configured, and the test of the sandbox.
    menu(page, "Providers")
    assert page.locator("[data-auth-token]").inner_text().startswith("not set")
    page.locator("section", has_text="Keeps outbound messages").get_by_role("button", name="Test connection").click()
    result = page.locator("[data-result]")
    assert result.get_attribute("data-result") == "ok"
    assert "sandbox: connected." in result.inner_text()
    shots(page, "admin-providers")

    # Send policy: a preset window and a blackout for one constituency.
    menu(page, "Send policy")
    page.get_by_label("Preset").select_option("india_election")
    page.get_by_role("button", name="Add window").click()
    page.get_by_label("From", exact=True).fill("2030-11-18T18:00")
    page.get_by_label("To", exact=True).fill("2030-11-17T18:00")
    page.get_by_label("Only voters tagged (optional)").fill("constituency")
    page.get_by_label("with the value", exact=True).fill("kothrud")
    page.get_by_role("button", name="Add blackout").click()
    assert "a blackout must end after it starts" in page.locator("#to-error").inner_text()
    assert page.get_by_label("with the value", exact=True).input_value() == "kothrud"
    page.locator("input[name=to]").fill("2030-11-20T18:00")
    page.get_by_label("Reason").fill("48 h silence before the poll")
    page.get_by_role("button", name="Add blackout").click()
    page.wait_for_url("**/admin/send-policy")
    assert page.locator("tr[data-blackout]").count() == 1
    assert "constituency=kothrud" in page.locator("tr[data-blackout]").inner_text()
    assert "india_election" in page.locator("tr[data-window]").inner_text()
    shots(page, "admin-send-policy")
    with world.rt.db.session() as s:
        blackout = s.scalar(select(PolicyBlackout))
        assert blackout is not None and blackout.starts_at.strftime("%H:%M") == "12:30"  # 18:00 in Kolkata

    # Prices: add one, then change it in its row.
    menu(page, "Prices")
    page.get_by_label("Channel").select_option("whatsapp")
    page.get_by_label("Country calling code").fill("91")
    page.get_by_label("Price", exact=True).fill("0.0107")
    page.get_by_role("button", name="Add price").click()
    page.wait_for_url("**/admin/prices")
    page.get_by_label("price of whatsapp +91").fill("0.0118")
    page.locator("tr[data-price]").get_by_role("button", name="Save").click()
    page.wait_for_url("**/admin/prices")
    assert page.get_by_label("price of whatsapp +91").input_value() == "0.0118"
    shots(page, "admin-prices")
    with world.rt.db.session() as s:
        assert s.scalar(select(Price.micros)) == 11_800

    menu(page, "Audit trail")
    actions = page.locator("tr[data-action]").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions == [
        "price.edit",
        "price.add",
        "policy.blackout.add",
        "policy.window.add",
        "sender.health",
        "sender.add",
        "token.issue",
    ]
    shots(page, "admin-audit")
    assert expected_422(watched) == []


def test_admin_pages_fit_a_phone(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    watched = open_console("admin", PHONE)
    page = watched.page
    for path, name in [("/admin/senders", "admin-senders"), ("/admin/send-policy", "admin-send-policy")]:
        page.goto(path)
        shots(page, name)
        assert page_width(page) <= PHONE["width"], f"{path} scrolls sideways on a phone"
    assert watched.problems == []
