"""A budget split per channel: the spec's shapes and errors, the caps at launch and for fallbacks, spend by channel."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from bot.channels.base import Outbound, SendError, Sent
from bot.engine.errors import FlowInvalid
from campaigns import budgets, editing, forecast, operations, overview, pricing, progress, reconciler, spec
from campaigns.fallback import FALLBACK_BASE
from campaigns.models import Campaign, CampaignStatus, Recipient
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.campaigns.test_compliance import statuses
from tests.campaigns.test_fallback import FALLBACK

NO_WAIT = FALLBACK.replace("  after: 1h\n", "")


def parse(budget: str, fallback: str = NO_WAIT) -> dict[str, object]:
    return spec.parse(BOOTH_SPEC + fallback + budget, "spec.yaml")


def problems(budget: str, fallback: str = NO_WAIT) -> list[str]:
    with pytest.raises(FlowInvalid) as caught:
        parse(budget, fallback)
    return [str(p) for p in caught.value.problems]


def test_a_budget_is_a_total_caps_per_channel_or_both() -> None:
    plain = parse("budget: 1000\n")
    assert (plain["budget_micros"], plain["budget_by_channel"]) == (1_000_000_000, None)
    both = parse("budget: {total: 1000, whatsapp: 600, sms: 399.50}\n")
    assert (both["budget_micros"], both["budget_by_channel"]) == (
        1_000_000_000,
        {"whatsapp": 600_000_000, "sms": 399_500_000},
    )
    split = parse("budget:\n  sms: 400\n")
    assert (split["budget_micros"], split["budget_by_channel"]) == (None, {"sms": 400_000_000})
    # A total alone written as a mapping is the same as the plain number.
    assert parse("budget: {total: 5}\n")["budget_by_channel"] is None


def test_budget_errors_name_the_field_and_point_at_it() -> None:
    # The budget starts at line 17 of the spec (after the fallback); each problem points at its part.
    assert problems("budget:\n  total: 1000\n  sms: -5\n") == [
        "spec.yaml:19:8: budget.sms: a number of 0 or more, got -5"
    ]
    assert problems("budget: {email: 5}\n") == [
        "spec.yaml:17:17: budget.email: not a part of a budget: write total, whatsapp, sms, voice"
    ]
    assert problems("budget: {total: 1000, whatsapp: 700, sms: 400}\n") == [
        "spec.yaml:17:9: budget: the channels' caps (whatsapp 700 + sms 400 = 1100) are more than the total 1000"
    ]
    assert problems("budget: {total: 0.15, sms: 0.60}\n") == [
        "spec.yaml:17:9: budget: the sms cap 0.6 is more than the total 0.15"
    ]
    assert problems("budget: {}\n") == [
        "spec.yaml:17:9: budget: a total, a cap per channel, or both, such as {total: 1000, whatsapp: 600, sms: 400}"
    ]
    # A channel the campaign does not send on: voice here, and sms without the fallback.
    assert problems("budget: {whatsapp: 5, voice: 5}\n") == [
        "spec.yaml:17:30: budget.voice: the campaign does not send on voice (it sends on whatsapp and sms)"
    ]
    assert problems("budget: {sms: 5}\n", fallback="") == [
        "spec.yaml:12:15: budget.sms: the campaign does not send on sms (it sends on whatsapp)"
    ]


def test_the_caps_that_hold_a_channel() -> None:
    budget = budgets.Budget(total=1_000, by_channel={"whatsapp": 600, "sms": 700})
    assert (budget.cap("whatsapp"), budget.cap("sms"), budget.cap("voice")) == (600, 700, 1_000)
    assert budget.overall(["whatsapp", "sms"]) == 1_000  # the total is lower than 600 + 700
    split = budgets.Budget(by_channel={"whatsapp": 600, "sms": 400})
    assert (split.cap("whatsapp"), split.overall(["whatsapp", "sms"]), split.overall(["whatsapp", "voice"])) == (
        600,
        1_000,
        None,  # voice has no cap: nothing holds the campaign as a whole
    )
    assert not budgets.Budget() and budgets.Budget().cap("sms") is None
    assert split.as_spec() == {"sms": "0.0004", "whatsapp": "0.0006"}
    assert budgets.Budget(total=2_500_000).as_spec() == {"total": "2.5"}


def prices(world: World, whatsapp: str = "0.50", sms: str = "0.60") -> None:
    with world.rt.db.session() as db:
        pricing.set_price(db, "whatsapp", "91", whatsapp, "INR")
        pricing.set_price(db, "sms", "91", sms, "INR")  # the turnout snippet is one segment


def test_the_campaign_channel_stops_at_its_own_cap_or_the_total(world: World) -> None:
    prices(world, whatsapp="0.10")
    ids = [world.voter(f"+91980000{i:04d}", "ward=3") for i in range(5)]
    capped = world.campaign(BOOTH_SPEC + "budget: {total: 1.00, whatsapp: 0.25}\n")  # 0.25 binds
    assert capped.status == "ready", capped.problems
    plan = operations.launch(world.rt, capped.id)
    assert (plan.pending, plan.skipped) == (2, {"over_budget": 3})
    got = statuses(world, capped.id)
    assert [got[i] for i in ids] == [("pending", None)] * 2 + [("skipped", "over_budget")] * 3
    # The total still holds a channel without a cap of its own (here: the split caps the fallback only).
    operations.stop(world.rt, capped.id, CampaignStatus.ABORTED)  # releases the voters
    total = world.campaign(BOOTH_SPEC + NO_WAIT + "budget: {total: 0.15, sms: 0.10}\n")
    assert operations.launch(world.rt, total.id).pending == 1


def failing(world: World, scripted, *reached: str):  # type: ignore[no-untyped-def]
    """A provider whose WhatsApp messages fail except to ``reached``; SMS always goes."""

    def answer(message: Outbound) -> Sent:
        if message.channel == "whatsapp" and message.to not in reached:
            raise SendError("outside the 24 hour window", retryable=False, code="63016")
        return Sent(provider_id=f"SM{message.message_id:032d}", status="sent")

    return scripted(answer)


def rows(world: World, campaign_id: int, voters: list[int]) -> list[tuple[str, str, str | None]]:
    with world.rt.db.session() as db:
        found = {r.contact_id: r for r in db.scalars(select(Recipient).where(Recipient.campaign_id == campaign_id))}
    return [(found[v].channel, found[v].status, found[v].skip_code) for v in voters]


def spend(world: World, campaign_id: int) -> dict[str, object]:
    with world.rt.db.session() as db:
        return progress.measure(db, world.get(campaign_id)).as_dict()["spend"]  # type: ignore[no-any-return]


def test_fallbacks_stay_within_their_channel_cap_and_spend_is_shown_per_channel(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    prices(world)
    voters = [world.voter(f"+91980000000{i}", "ward=3", name=f"V{i}") for i in (1, 2, 3, 4)]
    provider = failing(world, scripted, "+919800000001")
    campaign = world.campaign(BOOTH_SPEC + NO_WAIT + "budget: {whatsapp: 2.00, sms: 1.20}\n")
    assert campaign.status == "ready", campaign.problems
    assert operations.launch(world.rt, campaign.id).pending == 4  # 4 x 0.50 fits WhatsApp's 2.00
    world.send(campaign.id)
    with world.rt.db.session() as db:  # the one WhatsApp message the provider took was never delivered
        db.execute(update(Recipient).where(Recipient.contact_id == voters[0]).values(status="undelivered"))
    reconciler.reconcile(world.rt)
    # SMS's 1.20 pays for two fallbacks at 0.60, whatever is left of WhatsApp's cap.
    assert rows(world, campaign.id, voters) == [
        ("sms", "pending", None),
        ("sms", "pending", None),
        ("whatsapp", "failed", "over_budget"),
        ("whatsapp", "failed", "over_budget"),
    ]
    # Live: the undelivered WhatsApp message is spent already; the SMS not yet.
    assert spend(world, campaign.id) == {
        "spent": "0.5",
        "budget": "3.2",  # both channels capped: the campaign as a whole can spend no more
        "currency": "INR",
        "by_channel": {"whatsapp": {"spent": "0.5", "budget": "2"}, "sms": {"spent": "0", "budget": "1.2"}},
    }
    world.send(campaign.id, FALLBACK_BASE)
    assert sorted(m.to for m in provider.sent if m.channel == "sms") == ["+919800000001", "+919800000002"]
    reconciler.reconcile(world.rt)
    assert world.get(campaign.id).status == "completed"
    assert spend(world, campaign.id)["by_channel"] == {
        "whatsapp": {"spent": "0.5", "budget": "2"},
        "sms": {"spent": "1.2", "budget": "1.2"},
    }
    with world.rt.db.session() as db:
        assert budgets.spent(db, world.get(campaign.id)) == {
            "whatsapp": pricing.money(500_000),
            "sms": pricing.money(1_200_000),
        }
        (shown,) = [c for c in overview.current(db, dt.datetime.now(dt.UTC)) if c.id == campaign.id]
    assert (shown.spent, shown.budget) == (pricing.money(1_700_000), pricing.money(3_200_000))


def test_the_total_still_holds_the_fallbacks(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    prices(world)
    voters = [world.voter(f"+91980000000{i}", "ward=3", name=f"V{i}") for i in (1, 2, 3, 4)]
    failing(world, scripted, "+919800000001")
    campaign = world.campaign(BOOTH_SPEC + NO_WAIT + "budget: {total: 1.60, sms: 1.50}\n")
    assert operations.launch(world.rt, campaign.id).skipped == {"over_budget": 1}  # 3 x 0.50 fit 1.60
    world.send(campaign.id)
    reconciler.reconcile(world.rt)
    # 1.60 - 0.50 spent leaves 1.10: one SMS at 0.60, though SMS's own cap is 1.50.
    assert rows(world, campaign.id, voters) == [
        ("whatsapp", "sent", None),
        ("sms", "pending", None),
        ("whatsapp", "failed", "over_budget"),
        ("whatsapp", "skipped", "over_budget"),
    ]


def test_caps_are_checked_against_the_campaign_and_the_price_table(world: World) -> None:
    with world.rt.db.session() as db:
        pricing.set_price(db, "whatsapp", "91", "0.50", "INR")
    unpriced = world.campaign(BOOTH_SPEC + NO_WAIT + "budget: {whatsapp: 1, sms: 1}\n")
    assert "budget.sms: no sms prices to count it with (canvass prices set sms ...)" in unpriced.problems
    assert not any(p.startswith("budget.whatsapp") for p in unpriced.problems)
    # The channel changed after the cap was set (as the wizard may): the cap names a channel it no longer uses.
    mine = world.campaign(BOOTH_SPEC + "budget: {whatsapp: 1}\n")
    assert mine.status == "ready", mine.problems
    with world.rt.db.session() as db:
        campaign = db.get(Campaign, mine.id)
        assert campaign is not None
        found = editing.update(db, campaign, {"channel": "sms"}, region="IN")
    assert "budget.whatsapp: the campaign does not send on whatsapp (it sends on sms)" in found


def test_the_forecast_warns_per_channel(world: World) -> None:
    prices(world, whatsapp="0.10", sms="0.20")
    for i in range(3):
        world.voter(f"+91980000000{i}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC + NO_WAIT + "budget: {total: 10, whatsapp: 0.25, sms: 0.30}\n")
    with world.rt.db.session() as db:
        found = forecast.forecast(db, world.rt.settings, world.get(campaign.id))
    assert [(c.channel, str(c.cost), str(c.cap), c.fallback) for c in found.by_channel] == [
        ("whatsapp", "0.3", "0.25", False),
        ("sms", "0.6", "0.3", True),
    ]
    assert (
        "the whatsapp estimate 0.3 INR is over its whatsapp cap 0.25: the voters past it are skipped with "
        "over_budget" in found.warnings
    )
    assert (
        "if every voter needed the sms fallback it would cost 0.6 INR, over its sms cap 0.3: the fallbacks past "
        "it are not sent (over_budget)" in found.warnings
    )
    # The total binding: the warning names the budget, as without a split.
    total = world.campaign(BOOTH_SPEC + NO_WAIT + "budget: {total: 0.15, sms: 0.10}\n")
    with world.rt.db.session() as db:
        found = forecast.forecast(db, world.rt.settings, world.get(total.id))
    assert "the estimate 0.3 INR is over the budget 0.15: the voters past it are skipped with over_budget" in (
        found.warnings
    )
