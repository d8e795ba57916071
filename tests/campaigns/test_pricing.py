"""Prices, estimates and budgets: exact amounts, prefix-free country codes, the cap in send order."""

from __future__ import annotations

import decimal

import pytest

from campaigns import dispatch, operations, pricing, progress
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.campaigns.test_compliance import SMS_SPEC, statuses


def prices(world: World, *rows: tuple[str, str, str]) -> None:
    with world.rt.db.session() as db:
        for channel, code, amount in rows:
            pricing.set_price(db, channel, code, amount, "usd")


def test_amounts_are_exact() -> None:
    assert pricing.to_micros("0.0107") == 10_700
    assert pricing.to_micros(250) == 250_000_000
    assert pricing.money(10_700) == decimal.Decimal("0.0107")
    assert str(pricing.money(600_000_000)) == "600"  # not 6E+2
    for bad in ("-1", "cheap", "nan", "inf"):
        with pytest.raises(pricing.PriceError, match="price: a number"):
            pricing.to_micros(bad)


def test_the_price_table_keeps_one_currency(world: World) -> None:
    prices(world, ("whatsapp", "+91", "0.0107"))
    with world.rt.db.session() as db:
        with pytest.raises(pricing.PriceError, match="the price table is in USD"):
            pricing.set_price(db, "sms", "1", "0.0079", "INR")
        with pytest.raises(pricing.PriceError, match="calling code: 1 to 3 digits"):
            pricing.set_price(db, "sms", "9123", "0.01", "USD")
        # Not a country's code: +9 would price every +91, +92 ... number it prefixes.
        for code in ("9", "999", "091"):
            with pytest.raises(pricing.PriceError, match=f"calling code: \\+{code} is not a country's calling code"):
                pricing.set_price(db, "sms", code, "0.01", "USD")
        assert pricing.set_price(db, "sms", "+1", "0.01", "USD").calling_code == "1"


def test_estimate_by_country_with_sms_segments(world: World) -> None:
    prices(world, ("sms", "91", "0.0020"), ("sms", "1", "0.0079"), ("sms", "44", "0.0400"))
    for phone in ("+919800000001", "+919800000002", "+12025550123"):
        world.voter(phone, "ward=3")
    world.voter("+33612345678", "ward=3")  # France: no price
    campaign = world.campaign(SMS_SPEC)
    with world.rt.db.session() as db:
        found = operations.estimate(db, db.get(type(campaign), campaign.id), region="IN")  # type: ignore[arg-type]
    # The turnout snippet is one GSM-7 segment; +1 and +91 never mix (prefix-free codes).
    assert found.by_code == {"91": (2, decimal.Decimal("0.004")), "1": (1, decimal.Decimal("0.0079"))}
    assert (found.total, found.currency, found.unpriced) == (decimal.Decimal("0.0119"), "USD", 1)


def test_a_budget_skips_the_voters_past_it_and_spend_is_tracked(world: World) -> None:
    prices(world, ("whatsapp", "91", "0.10"))
    ids = [world.voter(f"+91980000{i:04d}", "ward=3") for i in range(5)]
    campaign = world.campaign(BOOTH_SPEC, budget_micros=pricing.to_micros("0.35"))
    plan = operations.launch(world.rt, campaign.id)
    assert plan.pending == 3 and plan.skipped == {"over_budget": 2}
    got = statuses(world, campaign.id)
    assert [got[i] for i in ids] == [("pending", None)] * 3 + [("skipped", "over_budget")] * 2
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    with world.rt.db.session() as db:
        numbers = progress.measure(db, world.get(campaign.id)).as_dict()
    assert numbers["spend"] == {
        "spent": "0.3",
        "budget": "0.35",
        "currency": "USD",
        "by_channel": {"whatsapp": {"spent": "0.3", "budget": None}},  # no cap of its own: the total holds it
    }


def test_a_bad_budget_in_a_spec(world: World) -> None:
    from bot.engine.errors import FlowInvalid

    with pytest.raises(FlowInvalid, match="budget: a number"):
        world.campaign(BOOTH_SPEC + "budget: lots\n")
    # A budget with nothing to count it with would be silently ignored: it is a problem.
    campaign = world.campaign(BOOTH_SPEC + "budget: 10\n")
    assert "budget: no whatsapp prices to count it with (canvass prices set whatsapp ...)" in campaign.problems
