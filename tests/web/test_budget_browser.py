"""The budget split in a real headless Chromium: the wizard's budget step, and the spend figures kept live.

Screenshots at a laptop width; the folder is printed at the end of the run.
"""

from __future__ import annotations

import threading

from campaigns import operations
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.campaigns.test_budgets import NO_WAIT
from tests.web.test_budget_pages import priced_voters
from tests.web.test_console_browser import wait_until


def test_caps_typed_in_the_wizard_hold_and_spend_follows_the_sends(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    priced_voters(world)
    campaign = world.campaign(BOOTH_SPEC + NO_WAIT, pace_per_s=5)
    watched = open_console("operator")
    page = watched.page

    page.goto(f"/campaigns/{campaign.id}/edit/budget")
    page.get_by_label("Spend at most, in total").fill("1")
    page.get_by_label("whatsapp").fill("0.25")
    page.get_by_label("sms (the fallback)").fill("0.30")
    shots(page, "budget-step")
    page.get_by_role("button", name="Save and continue").click()
    page.wait_for_url("**/edit/review")
    assert page.locator("[data-budget]").inner_text() == "at most 1 in total; sms at most 0.3; whatsapp at most 0.25"
    assert "over its whatsapp cap 0.25" in page.locator("[data-warnings]").inner_text()
    shots(page, "budget-review")

    assert operations.launch(world.rt, campaign.id).pending == 2  # 0.25 pays for two WhatsApp messages
    page.goto(f"/campaigns/{campaign.id}")
    assert page.locator("[data-spent='whatsapp']").inner_text() == "0"
    sending = threading.Thread(target=world.send, args=(campaign.id,))  # the worker's part, while the page polls
    sending.start()
    try:
        wait_until(lambda: page.locator("[data-spent='total']").inner_text() == "0.2")
    finally:
        sending.join()
    assert page.locator("[data-spent='whatsapp']").inner_text() == "0.2"
    shots(page, "budget-spend")
    assert watched.problems == []


def test_the_review_step_warns_when_voters_own_sms_texts_cost_more(world: World, open_console, shots) -> None:  # type: ignore[no-untyped-def]
    from campaigns import pricing
    from tests.campaigns.test_compliance import SMS_SPEC

    with world.rt.db.session() as db:
        pricing.set_price(db, "sms", "91", "0.60", "INR")
    world.voter("+919800000001", "ward=3", name="Asha")
    world.voter("+919800000002", "ward=3", name="आशा")
    campaign = world.campaign(SMS_SPEC + "budget: 1.80\n")
    watched = open_console("operator")
    page = watched.page
    page.goto(f"/campaigns/{campaign.id}/edit/review")
    warnings = page.locator("[data-warnings]").inner_text()
    assert "1 of 2 voters sampled get a text longer than the template's sample (1 SMS segment)" in warnings
    assert "SMS may cost about 50% more than estimated" in warnings
    shots(page, "sms-review-own-texts")
    assert watched.problems == []
