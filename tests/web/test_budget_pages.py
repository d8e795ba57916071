"""A budget split per channel in the console: the wizard's budget step, the review, the campaign page's spend.

Runs on SQLite and PostgreSQL (the ``world`` fixture).
"""

from __future__ import annotations

import html

from campaigns import operations, pricing
from tests.campaigns.conftest import BOOTH_SPEC, SMS, World
from tests.campaigns.test_budgets import NO_WAIT
from tests.web.test_wizard import field_error, operator, post, sender_id


def priced_voters(world: World) -> None:
    with world.rt.db.session() as db:
        pricing.set_price(db, "whatsapp", "91", "0.10", "USD")
        pricing.set_price(db, "sms", "91", "0.20", "USD")
    for i in range(3):
        world.voter(f"+91980000{i:04d}", "ward=3", name=f"V{i}")


def test_the_budget_step_sets_a_total_and_a_cap_per_channel(world: World) -> None:
    priced_voters(world)
    cid = world.campaign(BOOTH_SPEC + NO_WAIT).id
    client = operator(world)
    step = f"/campaigns/{cid}/edit/budget"
    page = html.unescape(client.get(step).get_data(as_text=True))
    assert 'name="budget.whatsapp"' in page and 'name="budget.sms"' in page and "(the fallback)" in page
    # The estimate by channel: the fallback's as if every voter needed it.
    assert '<tr data-channel="whatsapp"><td>whatsapp</td><td class="num">0.3</td><td class="num">no cap</td>' in page
    assert 'fallback: if every voter needed it</span></td><td class="num">0.6</td>' in page

    answer = post(client, step, {"budget": "1", "budget.whatsapp": "0.8", "budget.sms": "0.4"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'value="0.8"' in page  # shown again as typed
    assert field_error(page, "budget") == "the channels' caps (whatsapp 0.8 + sms 0.4 = 1.2) are more than the total 1"
    answer = post(client, step, {"budget": "", "budget.whatsapp": "0.25", "budget.sms": "-1"})
    assert field_error(answer.get_data(as_text=True), "budget.sms") == "a number of 0 or more, got '-1'"
    assert world.get(cid).budget_by_channel is None

    answer = post(client, step, {"budget": "1", "budget.whatsapp": "0.25", "budget.sms": "0.30"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/campaigns/{cid}/edit/review")
    c = world.get(cid)
    assert (c.budget_micros, c.budget_by_channel, c.status) == (
        1_000_000,
        {"whatsapp": 250_000, "sms": 300_000},
        "ready",
    )
    page = client.get(step).get_data(as_text=True)  # filled back as saved
    assert all(f'name="{name}" value="{v}"' in page for name, v in (("budget", 1), ("budget.sms", 0.3)))
    review = html.unescape(client.get(f"/campaigns/{cid}/edit/review").get_data(as_text=True))
    assert "<dd data-budget>at most 1 in total; sms at most 0.3; whatsapp at most 0.25</dd>" in review
    assert "the whatsapp estimate 0.3 USD is over its whatsapp cap 0.25" in review
    assert "if every voter needed the sms fallback it would cost 0.6 USD, over its sms cap 0.3" in review

    answer = post(client, step, {"budget": "", "budget.whatsapp": "", "budget.sms": ""})
    assert answer.status_code == 302
    assert (world.get(cid).budget_micros, world.get(cid).budget_by_channel) == (None, None)
    assert "<dd data-budget>no cap</dd>" in client.get(f"/campaigns/{cid}/edit/review").get_data(as_text=True)


def test_a_cap_for_a_channel_the_campaign_left_is_shown_to_clear(world: World) -> None:
    priced_voters(world)
    cid = world.campaign(BOOTH_SPEC + "budget: {whatsapp: 1}\n").id
    client = operator(world)
    basics = {"name": "Now by SMS", "channel": "sms", "sender": str(sender_id(world, SMS, "sms")), "kind": "real"}
    assert post(client, f"/campaigns/{cid}/edit/basics", basics).status_code == 302
    step = f"/campaigns/{cid}/edit/budget"
    page = client.get(step).get_data(as_text=True)
    assert 'name="budget.sms" value=""' in page and 'name="budget.whatsapp" value="1"' in page
    answer = post(client, step, {"budget": "", "budget.sms": "", "budget.whatsapp": "1"})
    assert answer.status_code == 422
    assert field_error(answer.get_data(as_text=True), "budget.whatsapp") == (
        "the campaign does not send on whatsapp (it sends on sms)"
    )
    assert post(client, step, {"budget": "", "budget.sms": "0.5", "budget.whatsapp": ""}).status_code == 302
    assert world.get(cid).budget_by_channel == {"sms": 500_000}


def test_the_campaign_page_shows_spend_per_channel_live(world: World) -> None:
    priced_voters(world)
    cid = world.campaign(BOOTH_SPEC + NO_WAIT + "budget: {whatsapp: 0.25, sms: 0.40}\n").id
    assert operations.launch(world.rt, cid).pending == 2  # 0.25 pays for two WhatsApp messages
    world.send(cid)
    client = operator(world)
    page = client.get(f"/campaigns/{cid}").get_data(as_text=True)
    assert '<td class="num" data-spent="whatsapp">0.2</td><td class="num">0.25</td>' in page
    assert '<td class="num" data-spent="sms">0</td><td class="num">0.4</td>' in page
    assert '<td class="num" data-spent="total">0.2</td><td class="num">0.65</td>' in page
    live = client.get(f"/campaigns/{cid}/progress.json").get_json()
    assert live["spend"]["by_channel"] == {
        "whatsapp": {"spent": "0.2", "budget": "0.25"},
        "sms": {"spent": "0", "budget": "0.4"},
    }
