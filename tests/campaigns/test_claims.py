"""Claiming a chunk of recipients: who is claimed, deferred or skipped, and what is stored for each."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from bot.db import utcnow
from bot.flowlibrary import FlowLibrary
from bot.models import ConsentStatus, Contact, FlowSession, Message, Sender
from bot.sendwindows import Blackout, Policy
from campaigns import operations
from campaigns.claims import Step, claim, next_pending
from campaigns.models import Campaign, Recipient, TemplateVersion
from tests.campaigns.conftest import BOOTH_SPEC, World


def _claim(world: World, campaign_id: int, policy: Policy | None = None, before=None):  # type: ignore[no-untyped-def]
    """Claim the batch's pending rows as a batch job does; ``before`` runs between the read and the claim."""
    with world.rt.db.session(write=True) as db:
        c = db.get(Campaign, campaign_id)
        assert c is not None
        found = FlowLibrary(db).get(c.flow_name or "", c.flow_version)
        version, sender = db.get(TemplateVersion, c.template_version_id), db.get(Sender, c.sender_id)
        assert found is not None and version is not None and sender is not None
        rows = next_pending(db, c.id, 0, 10, set())
        if before is not None:
            before(db, rows)
        return claim(db, c, Step(c.channel, sender, version, c.variables), found[0], rows, utcnow(), policy)


def _recipients(world: World, campaign_id: int) -> dict[str, Recipient]:
    with world.rt.db.session() as db:
        rows = db.execute(
            select(Contact.phone, Recipient)
            .join(Contact, Contact.id == Recipient.contact_id)
            .where(Recipient.campaign_id == campaign_id)
        ).all()
        db.expunge_all()
    return {phone: r for phone, r in rows}  # noqa: C416 - rows are Row objects


def test_each_claimed_row_points_to_its_own_stored_message_and_session(world: World) -> None:
    for i in range(4):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    claimed, deferred = _claim(world, campaign.id)
    assert len(claimed) == 4 and deferred == {}
    with world.rt.db.session() as db:
        for item in claimed:
            r = db.get(Recipient, item.recipient_id)
            m = db.get(Message, item.message_id)
            s = db.get(FlowSession, item.session_id)
            assert r is not None and m is not None and s is not None
            assert (r.status, r.attempts, r.message_id, r.session_id) == ("sending", 1, m.id, s.id)
            assert (m.recipient_id, m.session_id, m.contact_id, m.status) == (r.id, s.id, r.contact_id, "sending")
            assert (s.contact_id, s.status, s.campaign_id) == (r.contact_id, "waiting", campaign.id)
            assert r.sending_at is not None


def test_a_row_another_job_claimed_meanwhile_is_not_won_and_nothing_is_stored_for_it(world: World) -> None:
    for i in range(3):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    taken: list[int] = []

    def rival(db, rows) -> None:  # type: ignore[no-untyped-def]
        # Another job won the first row between this job's read and its claim (on SQLite the
        # write lock makes that impossible: the same change made here stands in for it).
        taken.append(rows[0][0])
        db.execute(update(Recipient).where(Recipient.id == rows[0][0]).values(status="sending", attempts=1))

    claimed, _ = _claim(world, campaign.id, before=rival)
    assert sorted(c.recipient_id for c in claimed) == sorted(set(_ids(world, campaign.id)) - set(taken))
    with world.rt.db.session() as db:
        assert db.scalar(select(Message.id).where(Message.recipient_id == taken[0])) is None
        lost = db.get(Recipient, taken[0])
        assert lost is not None and (lost.attempts, lost.message_id, lost.session_id) == (1, None, None)
        assert db.scalar(select(FlowSession.id).where(FlowSession.contact_id == lost.contact_id)) is None


def test_a_deferred_voter_is_left_untouched_and_an_opted_out_one_is_skipped(world: World) -> None:
    world.voter("+919800000001", "ward=3")
    world.voter("+919800000002", "ward=3", "constituency=north")
    world.voter("+919800000003", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)
    with world.rt.db.session() as db:
        db.execute(update(Contact).where(Contact.phone == "+919800000003").values(consent=ConsentStatus.OPTED_OUT))
    now = utcnow()
    silence = Blackout(now - dt.timedelta(hours=1), now + dt.timedelta(hours=47), tag="constituency", value="north")
    claimed, deferred = _claim(world, campaign.id, Policy(blackouts=(silence,)))
    rows = _recipients(world, campaign.id)
    assert [c.to for c in claimed] == ["+919800000001"]
    north = rows["+919800000002"]
    assert deferred == {north.id: silence.ends}
    # Never claimed: no attempt counted, nothing stored, still pending for a later run.
    assert (north.status, north.attempts, north.sending_at, north.message_id) == ("pending", 0, None, None)
    skipped = rows["+919800000003"]
    assert (skipped.status, skipped.skip_code, skipped.attempts, skipped.message_id) == (
        "skipped",
        "opted_out",
        0,
        None,
    )


def _ids(world: World, campaign_id: int) -> list[int]:
    with world.rt.db.session() as db:
        return list(db.scalars(select(Recipient.id).where(Recipient.campaign_id == campaign_id)))
