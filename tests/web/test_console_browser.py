"""The campaign pages in a real headless Chromium: live progress, the pause button, the funnel chart.

Each test saves screenshots at a laptop width (1280) and a phone width (390); the folder
is printed at the end of the run.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import func, select

from campaigns import operations
from campaigns.models import Recipient
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.web.browser import PHONE, in_thread

BAR = "#progress svg[data-bar]"
VOTERS = 80


def count(page: Any, group: str) -> int:
    return int(page.locator(f"#progress [data-count='{group}']").inner_text().replace(",", ""))


def wait_until(check: Any, timeout: float = 8.0) -> Any:
    """Poll ``check()`` until it is truthy (the page's CSP forbids Playwright's string predicates)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out waiting for the page"
        time.sleep(0.1)
    return found


def sent_in_db(world: World, campaign_id: int) -> int:
    with world.rt.db.session() as db:
        return (
            db.scalar(
                select(func.count())
                .select_from(Recipient)
                .where(Recipient.campaign_id == campaign_id, Recipient.status.in_(("sent", "delivered", "read")))
            )
            or 0
        )


def test_the_bar_moves_while_sending_and_the_pause_button_holds(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    # 8 s of sending at 10/s: the pause comes after the first poll, long before the end.
    for i in range(VOTERS):
        world.voter(f"+91980000{i:04d}", "ward=3", name=f"V{i}")
    campaign = world.campaign(BOOTH_SPEC, pace_per_s=10)
    watched = open_console("operator")
    page = watched.page
    page.on("dialog", lambda dialog: dialog.accept())  # "Start sending now?"

    page.get_by_role("link", name="Campaigns", exact=True).click()
    row = page.locator("table.campaigns tbody tr", has_text="Booth reminder")
    assert row.locator("[data-status-badge]").inner_text() == "ready"
    shots(page, "campaigns")
    row.get_by_role("link", name="Booth reminder").click()
    page.get_by_role("button", name="Launch now").click()
    assert page.locator(".flash").inner_text().startswith(f"Launched: {VOTERS} recipients, {VOTERS} to send")
    assert page.locator("[data-status-badge]").inner_text() == "active"
    assert count(page, "pending") == VOTERS and count(page, "completed") == 0

    # The worker's part, in a thread, while the page is open and polling.
    sending = threading.Thread(target=world.send, args=(campaign.id,))
    sending.start()
    try:
        first = wait_until(lambda: count(page, "completed"))
        width = float(page.locator(f"{BAR} [data-seg='completed']").get_attribute("width") or 0)
        assert 0 < first < VOTERS and width > 0
        assert count(page, "pending") == VOTERS - first
        shots(page, "campaign-sending")
        page.get_by_role("button", name="Pause").click()
    finally:
        sending.join(timeout=10)
    assert not sending.is_alive()

    assert page.locator(".flash").inner_text() == "Paused: sending stops within a second."
    assert page.locator("[data-status-badge]").inner_text() == "paused"
    # Sends already handed to the provider when the pause came are stored as they finish:
    # the next poll shows the final numbers, and then nothing moves any more.
    paused_at = sent_in_db(world, campaign.id)
    assert first < paused_at < VOTERS
    wait_until(lambda: count(page, "completed") == paused_at, timeout=5)
    assert count(page, "pending") == VOTERS - paused_at
    assert page.get_by_role("button", name="Resume").is_visible()
    assert sent_in_db(world, campaign.id) == paused_at
    shots(page, "campaign-paused")
    assert watched.problems == []

    # The same pages on a phone: nothing wider than its screen (no sideways scrolling).
    page.set_viewport_size(PHONE)
    # (The chart redraws itself for the new width a moment later.)
    wait_until(lambda: page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], timeout=3)
    shots(page, "campaign-paused")
    page.goto("/campaigns")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shots(page, "campaigns")


def test_the_funnel_chart_draws_and_follows_replies(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        world.voter(f"+91980000{i:04d}", "ward=3", name=f"V{i}")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    assert world.send(campaign.id) == {"delivered": 5}
    # Voters answer (each on a thread, as a webhook request would be).
    for phone, text in (("0", "No"), ("0", "ABC1234567"), ("1", "1"), ("2", "2")):
        in_thread(world.reply, f"+91980000000{phone}", text)

    for viewport, name in ((None, "laptop"), (PHONE, "phone")):
        watched = open_console("viewer", viewport) if viewport else open_console("viewer")
        page = watched.page
        page.goto(f"/campaigns/{campaign.id}")
        canvas = page.locator("#funnel-chart")
        canvas.wait_for(state="visible")
        drawn = page.evaluate(
            """() => {
              const canvas = document.getElementById("funnel-chart");
              const chart = Chart.getChart(canvas);
              const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
              let inked = 0;
              for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
              return {labels: chart.data.labels, data: chart.data.datasets[0].data, inked,
                      width: canvas.clientWidth, height: canvas.clientHeight};
            }"""
        )
        assert drawn["labels"] == ["greeted", "answered", "epic_given", "booth_shared"], name
        # Asking for the EPIC is the epic_given step: voters 0 and 2 were asked.
        assert drawn["data"] == [0, 5, 2, 1], name
        assert drawn["inked"] > 2000 and drawn["width"] > 250 and drawn["height"] > 150, (name, drawn)
        shots(page, "campaign-funnel")
        assert watched.problems == [], name

    # A voter answers while the page is open: the chart follows within a poll or two.
    in_thread(world.reply, "+919800000002", "XYZ1234567")
    wait_until(
        lambda: (
            page.evaluate("() => Chart.getChart(document.getElementById('funnel-chart')).data.datasets[0].data[3]") == 2
        ),
        timeout=6,
    )
    assert page.locator("tbody[data-funnel] tr").nth(3).inner_text().split() == ["booth_shared", "2"]
