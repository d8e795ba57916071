"""An SMS costs the segments of the text each voter gets, and that cost stays within the budget."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select, update

from bot.channels.base import Outbound, SendError, Sent
from campaigns import budgets, operations, pricing, reconciler, sms_costs, sms_segments
from campaigns.fallback import FALLBACK_BASE
from campaigns.models import BudgetRoom, Campaign, Recipient
from tests.campaigns.conftest import BOOTH_SPEC, World
from tests.campaigns.test_compliance import SMS_SPEC, statuses
from tests.campaigns.test_fallback import FALLBACK

DEVANAGARI = "आशा"  # a name outside GSM-7: the whole text becomes UCS-2


def sms_price(world: World, amount: str = "0.60") -> None:
    with world.rt.db.session() as db:
        pricing.set_price(db, "whatsapp", "91", "0.50", "INR")
        pricing.set_price(db, "sms", "91", amount, "INR")


def costs(world: World, campaign_id: int) -> dict[int, tuple[int | None, int | None]]:
    with world.rt.db.session() as db:
        rows = db.execute(
            select(Recipient.contact_id, Recipient.cost_micros, Recipient.fallback_cost_micros).where(
                Recipient.campaign_id == campaign_id
            )
        )
        return {cid: (cost, fallback) for cid, cost, fallback in rows}


def room(world: World, campaign_id: int) -> int | None:
    with world.rt.db.session() as db:
        found = db.get(BudgetRoom, campaign_id)
        return None if found is None else found.micros


def test_the_segment_count_quick_path_agrees_with_the_full_count() -> None:
    texts = ["", "a" * 160, "a" * 161, "a" * 306, "a" * 307, "{" * 80, "{" * 81, "{" * 153 + "a", "é" * 200]
    texts += ["आ" * 70, "आ" * 71, "आ" * 134, "आ" * 135, "ç" * 71, "आ{" * 40, "😀" * 35, "😀" * 36, "a" + "😀" * 34]
    for text in texts:
        assert sms_segments.segments(text) == sms_segments.count(text).segments, text


def test_an_sms_is_charged_for_the_segments_of_the_text_each_voter_gets(world: World) -> None:
    sms_price(world)
    plain = world.voter("+919800000001", "ward=3", name="Asha")
    other = world.voter("+919800000002", "ward=3", name=DEVANAGARI)
    campaign = world.campaign(SMS_SPEC)
    assert operations.launch(world.rt, campaign.id).pending == 2
    # Priced at launch from the sample text: one GSM-7 segment each.
    assert costs(world, campaign.id) == {plain: (600_000, None), other: (600_000, None)}
    assert world.send(campaign.id) == {"delivered": 2}  # the sandbox delivers at once
    # The name in Devanagari made that voter's text two UCS-2 segments: 1.20, and spend says so.
    assert costs(world, campaign.id) == {plain: (600_000, None), other: (1_200_000, None)}
    with world.rt.db.session() as db:
        assert budgets.spent(db, world.get(campaign.id)) == {"sms": pricing.money(1_800_000)}
    assert room(world, campaign.id) is None  # no budget: nothing to reserve


def test_the_extra_cost_must_fit_the_budget_left_after_launch(world: World) -> None:
    sms_price(world)
    voters = [world.voter(f"+91980000000{i}", "ward=3", name=n) for i, n in enumerate(["Asha", DEVANAGARI, "Ravi"])]
    campaign = world.campaign(SMS_SPEC + "budget: 1.80\n")
    assert operations.launch(world.rt, campaign.id).pending == 3  # 3 x 0.60 fits the 1.80 exactly
    world.send(campaign.id)
    # Nothing was left for the second voter's second segment: skipped, the others sent.
    got = statuses(world, campaign.id)
    assert [got[v] for v in voters] == [("delivered", None), ("skipped", "over_budget"), ("delivered", None)]
    with world.rt.db.session() as db:
        assert budgets.spent(db, world.get(campaign.id)) == {"sms": pricing.money(1_200_000)}
    assert room(world, campaign.id) == 0


def test_an_extra_cost_that_fits_is_reserved(world: World) -> None:
    sms_price(world)
    voters = [world.voter(f"+91980000000{i}", "ward=3", name=n) for i, n in enumerate(["Asha", DEVANAGARI, "Ravi"])]
    campaign = world.campaign(SMS_SPEC + "budget: {total: 3.00, sms: 2.40}\n")
    assert operations.launch(world.rt, campaign.id).pending == 3
    assert world.send(campaign.id) == {"delivered": 3}
    assert [costs(world, campaign.id)[v][0] for v in voters] == [600_000, 1_200_000, 600_000]
    assert room(world, campaign.id) == 0  # the sms cap 2.40 binds, not the total 3.00


def test_what_is_left_is_counted_again_when_a_reservation_does_not_fit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sms_price(world)
    voters = [world.voter(f"+91980000000{i}", "ward=3", name=DEVANAGARI) for i in range(3)]
    campaign = world.campaign(SMS_SPEC + "budget: 1.80\n")
    operations.launch(world.rt, campaign.id)
    with world.rt.db.session() as db:
        c = db.get(Campaign, campaign.id)
        assert c is not None
        assert sms_costs.recount(db, c, "sms") == 0
        # The first voter's message failed: not charged, its 0.60 is free again, but the
        # room row (a lower bound) does not know yet.
        db.execute(update(Recipient).where(Recipient.contact_id == voters[0]).values(status="failed"))
        rows = dict(db.execute(select(Recipient.contact_id, Recipient.id)).all())
        db.execute(
            update(Recipient)
            .where(Recipient.id.in_([rows[v] for v in voters[1:]]))
            .values(status="sending", attempts=1)
        )
    with world.rt.db.session() as db:
        c = db.get(Campaign, campaign.id)
        assert c is not None
        # Counted a moment ago: the count is trusted, nothing fits, the row is given up.
        assert sms_costs.charge(db, c, "sms", [rows[voters[1]]], {rows[voters[1]]: 600_000}) == []
        db.rollback()
        monkeypatch.setattr(sms_costs, "RECOUNT_S", dt.timedelta(0))
        # Counted again: the failed message's 0.60 pays for the second voter's second segment.
        assert sms_costs.charge(db, c, "sms", [rows[voters[1]]], {rows[voters[1]]: 600_000}) == [rows[voters[1]]]
        assert db.get(BudgetRoom, campaign.id).micros == 0  # type: ignore[union-attr]
        # Nothing left for the third: skipped over_budget, never sent.
        assert sms_costs.charge(db, c, "sms", [rows[voters[2]]], {rows[voters[2]]: 1}) == []
        third = db.get(Recipient, rows[voters[2]])
        assert (third.status, third.skip_code, third.attempts) == ("skipped", "over_budget", 0)  # type: ignore[union-attr]
        # A shorter text gives back.
        assert sms_costs.charge(db, c, "sms", [rows[voters[1]]], {rows[voters[1]]: -200_000}) == [rows[voters[1]]]
        assert db.get(BudgetRoom, campaign.id).micros == 200_000  # type: ignore[union-attr]


def test_a_row_sent_again_is_not_charged_twice(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    sms_price(world)
    voter = world.voter("+919800000001", "ward=3", name=DEVANAGARI)
    tries: list[str] = []

    def answer(message: Outbound) -> Sent:
        tries.append(message.to)
        if len(tries) == 1:
            raise SendError("busy", retryable=True, code="20429")
        return Sent(provider_id=f"SM{message.message_id:032d}", status="sent")

    scripted(answer)
    campaign = world.campaign(SMS_SPEC + "budget: 5\n")
    operations.launch(world.rt, campaign.id)
    world.send(campaign.id)
    with world.rt.db.session() as db:  # the retry is due now
        db.execute(update(Recipient).values(retry_at=None))
    world.send(campaign.id)
    assert tries == ["+919800000001"] * 2 and statuses(world, campaign.id)[voter] == ("sent", None)
    assert costs(world, campaign.id)[voter] == (1_200_000, None)
    assert room(world, campaign.id) == 5_000_000 - 1_200_000


def test_a_fallback_sms_is_charged_for_its_own_text(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    sms_price(world)
    voter = world.voter("+919800000001", "ward=3", name=DEVANAGARI)

    def answer(message: Outbound) -> Sent:
        if message.channel == "whatsapp":
            raise SendError("outside the 24 hour window", retryable=False, code="63016")
        return Sent(provider_id=f"SM{message.message_id:032d}", status="sent")

    scripted(answer)
    campaign = world.campaign(BOOTH_SPEC + FALLBACK.replace("  after: 1h\n", "") + "budget: {sms: 5}\n")
    operations.launch(world.rt, campaign.id)
    world.send(campaign.id)
    reconciler.reconcile(world.rt)
    assert costs(world, campaign.id)[voter] == (600_000, 600_000)  # WhatsApp failed: only the SMS
    assert room(world, campaign.id) is None  # the move leaves it to be counted again
    world.send(campaign.id, FALLBACK_BASE)
    assert costs(world, campaign.id)[voter] == (1_200_000, 1_200_000)
    with world.rt.db.session() as db:
        assert budgets.spent(db, world.get(campaign.id)) == {
            "whatsapp": pricing.money(0),
            "sms": pricing.money(1_200_000),
        }
    assert room(world, campaign.id) == 5_000_000 - 1_200_000


def test_a_recount_waits_for_the_reservations_before_it(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two claims at once (PostgreSQL): the second counts what is left with the first's cost in it."""
    if world.rt.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    monkeypatch.setattr(sms_costs, "RECOUNT_S", dt.timedelta(0))  # each counts, none trusts the other's count
    sms_price(world)
    voters = [world.voter(f"+91980000000{i}", "ward=3", name=DEVANAGARI) for i in range(3)]
    campaign = world.campaign(SMS_SPEC + "budget: 2.40\n")
    operations.launch(world.rt, campaign.id)  # 1.80 committed, 0.60 left
    with world.rt.db.session() as db:
        (first_row,) = db.scalars(select(Recipient.id).where(Recipient.contact_id == voters[0]))
        (second_row,) = db.scalars(select(Recipient.id).where(Recipient.contact_id == voters[1]))
    with world.rt.db.session() as db:  # both rows claimed, by two jobs
        db.execute(update(Recipient).where(Recipient.id.in_([first_row, second_row])).values(status="sending"))
    reserved, outcome = threading.Event(), []

    def first() -> None:
        with world.rt.db.session() as db:
            c = db.get(Campaign, campaign.id)
            outcome.append(("first", sms_costs.charge(db, c, "sms", [first_row], {first_row: 600_000})))  # type: ignore[arg-type]
            reserved.set()
            time.sleep(0.5)  # the second claim comes now, and must wait for this one

    def second() -> None:
        reserved.wait()
        with world.rt.db.session() as db:
            c = db.get(Campaign, campaign.id)
            outcome.append(("second", sms_costs.charge(db, c, "sms", [second_row], {second_row: 600_000})))  # type: ignore[arg-type]

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert outcome == [("first", [first_row]), ("second", [])]
    assert costs(world, campaign.id)[voters[0]] == (1_200_000, None)
    assert costs(world, campaign.id)[voters[1]] == (600_000, None)


def test_the_review_step_warns_when_voters_own_texts_are_longer_than_the_sample(world: World) -> None:
    from campaigns import forecast

    sms_price(world)
    world.voter("+919800000001", "ward=3", name="Asha")
    world.voter("+919800000002", "ward=3", name=DEVANAGARI)
    plain = world.campaign(SMS_SPEC)
    with world.rt.db.session() as db:
        found = forecast.forecast(db, world.rt.settings, world.get(plain.id))
    assert (
        "1 of 2 voters sampled get a text longer than the template's sample (1 SMS segment): SMS may cost about "
        "50% more than estimated, as each text is priced when sent (a name outside GSM-7, such as Devanagari, "
        "makes the whole text UCS-2)" in found.warnings
    )
    # The fallback's text too; a WhatsApp message is one price whatever its length.
    both = world.campaign(BOOTH_SPEC + FALLBACK)
    with world.rt.db.session() as db:
        found = forecast.forecast(db, world.rt.settings, world.get(both.id))
    assert [w for w in found.warnings if "sampled" in w] == [
        "1 of 2 voters sampled get a text longer than the sms fallback's template's sample (1 SMS segment): SMS "
        "may cost about 50% more than estimated, as each text is priced when sent (a name outside GSM-7, such as "
        "Devanagari, makes the whole text UCS-2)"
    ]
