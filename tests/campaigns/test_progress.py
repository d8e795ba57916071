"""Live numbers: the funnel counts of a campaign's voters, per step, in the flow's order."""

from __future__ import annotations

from sqlalchemy import select

from bot.db import utcnow
from bot.models import FlowSession, FunnelEvent
from campaigns import operations, progress
from tests.campaigns.conftest import BOOTH_SPEC, World


def test_funnel_counts_only_the_campaigns_voters_in_the_flows_order(world: World) -> None:
    asha = world.voter("+919800000001", "ward=3", name="Asha")
    world.voter("+919800000002", "ward=3", name="Ravi")
    world.voter("+919800000003", name="Meena")  # not in the audience
    campaign = world.campaign(BOOTH_SPEC)
    with world.rt.db.session() as db:
        assert progress.funnel_counts(db, world.get(campaign.id)) == [
            ("greeted", 0),
            ("answered", 0),
            ("epic_given", 0),
            ("booth_shared", 0),
        ]
    operations.launch(world.rt, campaign.id)
    world.send(campaign.id)
    world.reply("+919800000003", "booth")  # a session of its own, outside the campaign
    world.reply("+919800000001", "2")  # asked for the EPIC: epic_given
    world.reply("+919800000001", "nonsense")  # asked again: still counted once
    with world.rt.db.session() as db:
        session_id = db.scalar(select(FlowSession.id).where(FlowSession.contact_id == asha))
        # A step the flow does not declare (a subflow's) comes after the declared ones.
        event = FunnelEvent(
            session_id=session_id, contact_id=asha, flow_name="other", step="extra", reached_at=utcnow()
        )
        db.add(event)
    with world.rt.db.session() as db:
        assert progress.funnel_counts(db, world.get(campaign.id)) == [
            ("greeted", 0),
            ("answered", 2),
            ("epic_given", 1),
            ("booth_shared", 0),
            ("extra", 1),
        ]
