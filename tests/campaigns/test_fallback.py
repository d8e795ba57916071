"""Channel fallback: WhatsApp failed or stayed undelivered -> the same recipient's SMS attempt."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text, update

from bot.channels.base import Outbound, SendError, Sent
from bot.db import utcnow
from bot.models import Message
from campaigns import dispatch, fallback, operations, reconciler
from campaigns.fallback import FALLBACK_BASE
from campaigns.models import Recipient
from tests.campaigns.conftest import BOOTH_SPEC, World

FALLBACK = """fallback:
  channel: sms
  sender: "+919999900002"
  template: turnout_sms
  variables: {1: {contact: name}}
  after: 1h
"""


def test_whatsapp_failures_fall_back_to_sms(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    def answer(message: Outbound) -> Sent:
        if message.channel == "whatsapp" and message.to == "+919800000001":
            raise SendError("outside the 24 hour window", retryable=False, code="63016")
        return Sent(provider_id=f"SM{message.message_id:032d}", status="sent")

    provider = scripted(answer)
    failed = world.voter("+919800000001", "ward=3", name="Asha")
    silent = world.voter("+919800000002", "ward=3", name="Ravi")
    fine = world.voter("+919800000003", "ward=3", name="Meena")
    landline = world.voter("+912024567890", "volunteer", kind="fixed_line")
    del landline
    campaign = world.campaign(BOOTH_SPEC + FALLBACK)
    assert campaign.status == "ready", campaign.problems
    operations.launch(world.rt, campaign.id)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    # The fine voter's message was delivered; the silent one's stays "sent"; the campaign
    # waits: fallbacks may still come.
    with world.rt.db.session() as db:
        db.execute(update(Recipient).where(Recipient.contact_id == fine).values(status="delivered"))
        # Two hours later, the silent voter's WhatsApp message was never delivered.
        db.execute(
            update(Recipient).where(Recipient.contact_id == silent).values(sent_at=utcnow() - dt.timedelta(hours=2))
        )
    assert world.get(campaign.id).status == "active"
    done = reconciler.reconcile(world.rt)
    assert done["requeued"] == 1  # the fallback batch, queued
    with world.rt.db.session() as db:
        rows = {r.contact_id: r for r in db.scalars(select(Recipient).where(Recipient.campaign_id == campaign.id))}
    assert (rows[failed].channel, rows[failed].status, rows[failed].batch) == ("sms", "pending", FALLBACK_BASE)
    assert (rows[silent].channel, rows[silent].status) == ("sms", "pending")
    assert rows[fine].channel == "whatsapp"
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, FALLBACK_BASE)
    sms = [m for m in provider.sent if m.channel == "sms"]
    assert sorted(m.to for m in sms) == ["+919800000001", "+919800000002"]
    asha = next(m for m in sms if m.to == "+919800000001")  # sends run concurrently: in any order
    assert asha.text.startswith("Hi Asha, polling day is 20 Nov") and asha.sender == "+919999900002"
    with world.rt.db.session() as db:
        rows = {r.contact_id: r for r in db.scalars(select(Recipient).where(Recipient.campaign_id == campaign.id))}
        first = db.scalars(select(Message.channel).where(Message.contact_id == failed).order_by(Message.id)).all()
    assert (rows[failed].attempts, rows[failed].status, rows[failed].channel) == (2, "sent", "sms")
    assert first == ["whatsapp", "sms"]  # the failed WhatsApp attempt stays on the timeline
    # Once the SMS attempts are sent, nothing more can fall back: completed.
    reconciler.reconcile(world.rt)
    assert world.get(campaign.id).status == "completed"


def test_the_fallback_is_checked_like_the_campaign(world: World) -> None:
    bad = (
        FALLBACK.replace("turnout_sms", "booth_reminder")
        .replace("channel: sms", "channel: whatsapp")
        .replace("+919999900002", "+919999900001")
    )
    campaign = world.campaign(BOOTH_SPEC + bad)
    assert "fallback: it must use another channel than whatsapp" in campaign.problems
    wrong_template = world.campaign(BOOTH_SPEC + FALLBACK.replace("turnout_sms", "booth_reminder"))
    assert any(p.startswith("fallback: template: booth_reminder is for whatsapp") for p in wrong_template.problems)


def test_fallbacks_stay_within_the_budget(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    from campaigns import budgets, pricing

    def answer(message: Outbound) -> Sent:
        if message.channel == "whatsapp" and message.to != "+919800000004":
            raise SendError("outside the 24 hour window", retryable=False, code="63016")
        return Sent(provider_id=f"SM{message.message_id:032d}", status="sent")

    provider = scripted(answer)
    with world.rt.db.session() as db:
        pricing.set_price(db, "whatsapp", "91", "0.50", "INR")
        pricing.set_price(db, "sms", "91", "0.60", "INR")  # one segment: the SMS is short
    voters = [world.voter(f"+91980000000{i}", "ward=3", name=f"V{i}") for i in (1, 2, 3, 4)]
    # Four WhatsApp messages fit the budget exactly; three fail (not charged), one is sent.
    campaign = world.campaign(BOOTH_SPEC + FALLBACK.replace("  after: 1h\n", "") + "budget: 2.00\n")
    assert campaign.status == "ready", campaign.problems
    assert operations.launch(world.rt, campaign.id).pending == 4
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    # 2.00 - 0.50 spent leaves 1.50: two SMS fallbacks at 0.60, not three.
    reconciler.reconcile(world.rt)
    with world.rt.db.session() as db:
        rows = {r.contact_id: r for r in db.scalars(select(Recipient).where(Recipient.campaign_id == campaign.id))}
    assert [(rows[v].channel, rows[v].status, rows[v].skip_code) for v in voters] == [
        ("sms", "pending", None),
        ("sms", "pending", None),
        ("whatsapp", "failed", "over_budget"),  # keeps its first attempt's status: no fallback
        ("whatsapp", "sent", None),
    ]
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, FALLBACK_BASE)
    assert sorted(m.to for m in provider.sent if m.channel == "sms") == ["+919800000001", "+919800000002"]
    reconciler.reconcile(world.rt)
    assert world.get(campaign.id).status == "active"  # the WhatsApp message sent may still fail
    with world.rt.db.session() as db:
        stale = utcnow() - fallback.FAILURE_GRACE - dt.timedelta(minutes=1)
        db.execute(update(Recipient).where(Recipient.campaign_id == campaign.id).values(sent_at=stale))
    reconciler.reconcile(world.rt)  # nothing more can fall back: completed
    assert world.get(campaign.id).status == "completed"
    with world.rt.db.session() as db:
        spent = budgets.spent(db, world.get(campaign.id))
    # 0.50 + 2 x 0.60, within 2.00: the failed WhatsApp attempts were not charged.
    assert spent == {"whatsapp": pricing.money(500_000), "sms": pricing.money(1_200_000)}


def test_a_failure_reported_after_the_last_send_still_falls_back(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    """Without ``after``: WhatsApp accepts every message, a callback reports a failure later."""
    provider = scripted(lambda m: Sent(provider_id=f"SM{m.message_id:032d}", status="sent"))
    late = world.voter("+919800000001", "ward=3", name="Asha")
    world.voter("+919800000002", "ward=3", name="Ravi")
    campaign = world.campaign(BOOTH_SPEC + FALLBACK.replace("  after: 1h\n", ""))
    assert campaign.status == "ready", campaign.problems
    operations.launch(world.rt, campaign.id)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    reconciler.reconcile(world.rt)
    assert world.get(campaign.id).status == "active"  # its failures may still be reported
    # A minute later Twilio reports Asha's message undelivered (63016).
    with world.rt.db.session() as db:
        db.execute(update(Recipient).where(Recipient.contact_id == late).values(status="undelivered"))
    reconciler.reconcile(world.rt)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, FALLBACK_BASE)
    assert [(m.channel, m.to) for m in provider.sent if m.channel == "sms"] == [("sms", "+919800000001")]
    reconciler.reconcile(world.rt)
    assert world.get(campaign.id).status == "active"  # Ravi's may still fail
    with world.rt.db.session() as db:  # past the grace: nothing more can fall back
        stale = utcnow() - fallback.FAILURE_GRACE - dt.timedelta(minutes=1)
        db.execute(update(Recipient).where(Recipient.campaign_id == campaign.id).values(sent_at=stale))
    reconciler.reconcile(world.rt)
    assert world.get(campaign.id).status == "completed"


def test_a_message_delivered_while_its_fallback_is_given_keeps_its_delivery(
    world: World, scripted, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    scripted(lambda m: Sent(provider_id=f"SM{m.message_id:032d}", status="sent"))
    voter = world.voter("+919800000001", "ward=3", name="Asha")
    campaign = world.campaign(BOOTH_SPEC + FALLBACK)  # after: 1h
    operations.launch(world.rt, campaign.id)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    with world.rt.db.session() as db:
        db.execute(update(Recipient).values(sent_at=utcnow() - dt.timedelta(hours=2)))
    within = fallback._within_budget

    def delivered_meanwhile(db, campaign, channel, candidates):  # type: ignore[no-untyped-def]
        # The "delivered" callback lands between the fallback's read and its update.
        db.execute(update(Recipient).where(Recipient.contact_id == voter).values(status="delivered"))
        return within(db, campaign, channel, candidates)

    monkeypatch.setattr(fallback, "_within_budget", delivered_meanwhile)
    reconciler.reconcile(world.rt)
    with world.rt.db.session() as db:
        row = db.scalar(select(Recipient).where(Recipient.contact_id == voter))
        assert row is not None and (row.channel, row.status) == ("whatsapp", "delivered")


def test_the_completion_check_and_a_fallback_move_do_not_race(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    """Both lock the campaign's row: a completion check never completes under a move, a move never fills a done one."""
    from campaigns.models import Campaign

    def answer(message: Outbound) -> Sent:
        if message.channel == "whatsapp":
            raise SendError("outside the 24 hour window", retryable=False, code="63016")
        return Sent(provider_id=f"SM{message.message_id:032d}", status="sent")

    scripted(answer)
    voter = world.voter("+919800000001", "ward=3")
    campaign = world.campaign(BOOTH_SPEC + FALLBACK.replace("  after: 1h\n", ""))
    operations.launch(world.rt, campaign.id)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0)
    if world.rt.db.engine.dialect.name == "postgresql":
        # A move under way holds the row: the check does not wait for it, and does not complete.
        with world.rt.db.session() as mover:
            mover.scalar(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
            with world.rt.db.session() as checker:
                checker.execute(text("SET LOCAL lock_timeout = '2s'"))  # without the check's lock: it would wait
                long_ago = utcnow() - dt.timedelta(days=1)  # as if nothing could still fall back
                checker.execute(update(Recipient).values(status="sent", sent_at=long_ago, sending_at=long_ago))
                assert operations.complete_if_done(checker, campaign.id) is False
                checker.rollback()
    # A campaign that is no longer active gets no fallback rows.
    with world.rt.db.session() as db:
        db.execute(update(Campaign).where(Campaign.id == campaign.id).values(status="completed"))
    with world.rt.db.session() as db:
        c = db.get(Campaign, campaign.id)
        assert fallback.move(db, c, utcnow(), 100) == []  # type: ignore[arg-type]
        row = db.scalar(select(Recipient).where(Recipient.contact_id == voter))
        assert (row.channel, row.status) == ("whatsapp", "failed")  # type: ignore[union-attr]
