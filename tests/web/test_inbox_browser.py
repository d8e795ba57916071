"""The inbox in a real headless Chromium: a flow hands a voter to a person, who answers.

The voter talks to booth_locator on the sandbox provider until the flow hands off; an
operator finds the case in the inbox, replies, writes a note, closes the case, and sees
it all on the voter's page. Screenshots at a laptop width (1280) and a phone width (390).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.models import HandoffCase, Message
from bot.outbox import send_message
from tests.campaigns.conftest import World
from tests.web.browser import PHONE, in_thread

VOTER = "+919876500001"


def fits(page: Any, width: int) -> bool:
    """Nothing on the page is wider than the window (no sideways scrolling)."""
    return page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_an_agent_answers_a_handed_off_voter_and_closes_the_case(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    world.voter(VOTER, "ward=3", name="Asha")
    for text in ("booth", "maybe", "perhaps", "dunno"):  # three wrong answers: booth_locator hands off
        in_thread(world.reply, VOTER, text)
    with world.rt.db.session() as s:
        case_id = s.scalars(select(HandoffCase.id)).one()

    watched = open_console("operator")
    page = watched.page
    page.get_by_role("link", name="Inbox").click()
    assert page.locator("table.cases tbody").inner_text().startswith("No open cases are assigned to you")
    page.locator("nav.statuses").get_by_role("link", name="all open").click()
    row = page.locator(f"tr[data-case='{case_id}']")
    assert "booth locator: could not help Asha" in row.inner_text() and "nobody yet" in row.inner_text()
    shots(page, "inbox")
    row.get_by_role("link", name=VOTER).click()
    assert page.locator("[data-window]").get_attribute("data-window") == "open"
    assert page.locator(".bubble.from-voter").last.inner_text().startswith("dunno")
    shots(page, "inbox-case")

    page.get_by_label(f"Message to {VOTER}").fill("Hello Asha, this is Ravi from the booth desk. Your EPIC, please?")
    page.get_by_role("button", name="Send", exact=True).click()
    assert page.locator(".flash").inner_text() == f"Your message to {VOTER} is queued (on whatsapp)."
    assert page.locator("[data-assignee]").inner_text() == "operator@example.org"
    # The worker's part: the sandbox delivers it.
    with world.rt.db.session() as s:
        reply_id = s.scalar(select(Message.id).where(Message.purpose == "direct"))
    assert send_message(world.rt.db, world.rt.settings, reply_id) == "delivered"
    in_thread(world.reply, VOTER, "It is ABC1234567")  # the voter answers the person, not the bot

    page.get_by_label("Note", exact=True).fill("x" * 30 + "y")  # maxlength stops the 31st character
    assert page.get_by_label("Note", exact=True).input_value() == "x" * 30
    page.get_by_label("Note", exact=True).fill("EPIC ABC1234567, ward 3")
    page.get_by_role("button", name="Save note").click()
    assert page.locator(".flash").inner_text() == "Note saved: EPIC ABC1234567, ward 3."
    bubbles = page.locator(".chat .bubble")
    assert bubbles.nth(-2).inner_text().startswith("Hello Asha, this is Ravi")
    assert "delivered" in bubbles.nth(-2).inner_text()
    assert bubbles.nth(-1).inner_text().startswith("It is ABC1234567")
    shots(page, "inbox-case-replied")
    assert page.locator("details summary").inner_text() == "Send an approved template"

    page.set_viewport_size(PHONE)
    assert fits(page, PHONE["width"])
    shots(page, "inbox-case-replied")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("button", name="Close case").click()
    assert (
        page.locator(".flash").inner_text() == f"Closed: {VOTER} is back with the bot and available to campaigns again."
    )
    assert page.locator("table.cases tbody").inner_text().startswith("No open cases are assigned to you")
    page.get_by_role("link", name="recently closed").click()
    assert "EPIC ABC1234567, ward 3" in page.locator(f"tr[data-case='{case_id}']").inner_text()

    # The voter's page: details, the note, and the timeline with the case, newest first.
    page.get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name=VOTER).click()
    assert page.locator("[data-note]").inner_text() == "EPIC ABC1234567, ward 3"
    kinds = page.locator(".timeline [data-kind]").evaluate_all("(items) => items.map((i) => i.dataset.kind)")
    assert {"message", "funnel", "handoff"} <= set(kinds)
    assert page.locator(".timeline .entry.message").first.inner_text().count("It is ABC1234567") == 1
    assert "closed" in page.locator(".timeline .entry.handoff").first.inner_text()
    shots(page, "voter")
    page.set_viewport_size(PHONE)
    assert fits(page, PHONE["width"])
    shots(page, "voter")
    assert watched.problems == []


def test_a_viewer_reads_the_inbox_and_an_operator_takes_a_voter_over(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    contact_id = world.voter(VOTER, "ward=3", name="Asha")
    viewer = open_console("viewer").page
    viewer.goto(f"/contacts/{contact_id}")
    assert viewer.get_by_role("button", name="Take over").count() == 0
    assert viewer.locator("textarea").count() == 0

    watched = open_console("operator")
    page = watched.page
    page.goto(f"/contacts/{contact_id}")
    assert page.locator("[data-window]").get_attribute("data-window") == "closed"
    page.get_by_role("button", name="Take over").click()
    assert page.locator(".flash").inner_text().startswith(f"You took over the conversation with {VOTER}")
    assert page.locator("[data-case-status]").inner_text() == "open"
    # The voter never wrote on WhatsApp: no free text, a template (the page says why).
    assert page.locator("textarea").count() == 0
    assert "only a template that WhatsApp approved" in page.locator("[data-window]").inner_text()
    page.get_by_role("button", name="Choose").click()
    page.get_by_label("Value of {{1}}").fill("Asha")
    page.get_by_label("Value of {{2}}").fill("3")
    shots(page, "inbox-case-template")
    page.get_by_role("button", name="Send template").click()
    assert page.locator(".flash").inner_text() == f"Your template to {VOTER} is queued (on whatsapp)."
    assert page.locator(".bubble.to-voter").last.inner_text().startswith("Namaste Asha! Polling in ward 3")
    assert watched.problems == []

    viewer.goto("/inbox?tab=all")
    viewer.get_by_role("link", name=VOTER).click()
    assert viewer.get_by_role("button", name="Close case").count() == 0
    assert viewer.get_by_text("replying needs the operator role").count() == 1
    shots(viewer, "inbox-case-viewer")
