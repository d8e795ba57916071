"""The planner: one row per voter in one statement, every skip code, batches, double launch."""

from __future__ import annotations

import pytest
from rq import Queue
from sqlalchemy import func, select

from bot.models import HandoffCase
from campaigns import lanes, operations, planner
from campaigns.models import Campaign, Recipient
from tests.campaigns.conftest import BOOTH_SPEC, World


def rows(world: World, campaign_id: int) -> dict[int, tuple[str, str | None, int | None]]:
    with world.rt.db.session() as db:
        found = db.execute(
            select(Recipient.contact_id, Recipient.status, Recipient.skip_code, Recipient.batch).where(
                Recipient.campaign_id == campaign_id
            )
        )
        return {cid: (status, code, batch) for cid, status, code, batch in found}


def test_every_skip_code_and_the_voters_who_are_sent(world: World) -> None:  # type: ignore[no-untyped-def]
    ok = world.voter("+919800000001", "ward=3")
    opted_out = world.voter("+919800000002", "ward=3", consent="opted_out")
    invalid = world.voter("+919800000003", "ward=3", kind="unknown")
    landline = world.voter("+912024567890", "ward=3", kind="fixed_line")
    no_whatsapp = world.voter("+919800000005", "ward=3", whatsapp=False)
    handoff = world.voter("+919800000006", "ward=3")
    engaged = world.voter("+919800000007", "ward=3")
    no_name = world.voter("+919800000008", "ward=3", name=None)
    empty_ward = world.voter("+919800000009", "volunteer")  # in the audience, but no ward
    outside = world.voter("+919800000010", "youth")  # not in the audience
    with world.rt.db.session() as db:
        db.add(HandoffCase(contact_id=handoff, status="open"))
    other = world.campaign(BOOTH_SPEC, segment={"tag": "senior"})
    with world.rt.db.session() as db:
        # Another live campaign already reached this voter.
        db.add(Recipient(campaign_id=other.id, contact_id=engaged, channel="whatsapp", status="delivered"))
        db.execute(Campaign.__table__.update().where(Campaign.id == other.id).values(status="active"))
    campaign = world.campaign(BOOTH_SPEC, segment={"any": [{"tag": "ward"}, {"tag": "volunteer"}]})
    assert campaign.status == "ready", campaign.problems
    plan = operations.launch(world.rt, campaign.id)
    got = rows(world, campaign.id)
    assert outside not in got
    assert got[ok] == ("pending", None, 0)
    assert {cid: code for cid, (_, code, _) in got.items() if code} == {
        opted_out: "opted_out",
        invalid: "invalid_number",
        landline: "not_mobile",
        no_whatsapp: "no_whatsapp",
        handoff: "handoff_open",
        engaged: "engaged_elsewhere",
        no_name: "missing_variable",
        empty_ward: "missing_variable",
    }
    assert all(status == "skipped" and batch is None for status, code, batch in got.values() if code)
    assert plan.total == 9 and plan.pending == 1 and plan.skipped["missing_variable"] == 2
    assert Queue("sends", connection=world.rt.redis).job_ids == [f"batch-{campaign.id}-0"]


def test_a_landline_is_fine_for_calls_and_sms_needs_no_whatsapp(world: World) -> None:
    landline = world.voter("+912024567890", "volunteer", kind="fixed_line")
    no_whatsapp = world.voter("+919800000005", "volunteer", whatsapp=False)
    with world.rt.db.session() as db:
        campaign = world.campaign(
            "name: s\nchannel: sms\ntemplate: turnout_sms\nvariables: {1: {contact: name}}\n"
            "audience: {tag: volunteer}\nflow: {name: turnout_reminder, at: rsvp}\n"
        )
        checks = dict(planner.skip_checks(db.get(Campaign, campaign.id), "sqlite"))  # type: ignore[arg-type]
    assert "no_whatsapp" not in checks and "not_mobile" in checks
    operations.launch(world.rt, campaign.id)
    got = rows(world, campaign.id)
    assert got[landline][1] == "not_mobile"
    assert got[no_whatsapp] == ("pending", None, 0)


def test_defaults_and_answers_as_variables(world: World) -> None:
    unnamed = world.voter("+919800000001", "ward=3", name=None)
    campaign = world.campaign(
        BOOTH_SPEC, variables={"1": {"contact": "name", "default": "voter"}, "2": {"tag": "ward"}}
    )
    operations.launch(world.rt, campaign.id)
    assert rows(world, campaign.id)[unnamed] == ("pending", None, 0)


def test_batches_follow_the_pace_and_only_pending_rows_are_numbered(world: World) -> None:
    ids = [world.voter(f"+91980000{i:04d}", "ward=3") for i in range(45)]
    world.voter("+919811111111", "ward=3", consent="opted_out")
    campaign = world.campaign(BOOTH_SPEC, pace_per_s=0.25)  # 15 per minute: the smallest batch, 20
    plan = operations.launch(world.rt, campaign.id)
    got = rows(world, campaign.id)
    assert planner.batch_size(0.25) == 20 and plan.batches == [0, 1, 2]
    assert [got[i][2] for i in ids] == [0] * 20 + [1] * 20 + [2] * 5
    # Two lanes (the default): two batches queued, the third waits for one of them to end.
    assert Queue("sends", connection=world.rt.redis).job_ids == [f"batch-{campaign.id}-0", f"batch-{campaign.id}-1"]
    assert lanes.waiting(world.rt.redis, campaign.id) == {2}


def test_a_double_launch_plans_nothing_twice(world: World) -> None:
    for i in range(5):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    first = operations.launch(world.rt, campaign.id)
    second = operations.launch(world.rt, campaign.id)  # active already: re-queues, inserts nothing
    with world.rt.db.session() as db:
        n = db.scalar(select(func.count()).select_from(Recipient).where(Recipient.campaign_id == campaign.id))
    assert n == 5 and first.total == second.total == 5
    # RQ does not de-duplicate by id: the job is queued again, and its claims make that harmless.
    assert Queue("sends", connection=world.rt.redis).job_ids == [f"batch-{campaign.id}-0"] * 2


def test_an_empty_audience_cannot_be_launched(world: World) -> None:
    campaign = world.campaign(BOOTH_SPEC)
    with pytest.raises(operations.CampaignError, match="audience is empty"):
        operations.launch(world.rt, campaign.id)
    assert world.get(campaign.id).status == "ready"


def test_a_test_campaign_goes_to_its_numbers_and_engages_nobody(world: World) -> None:
    tester = world.voter("+919800000001", "ward=3")
    voter = world.voter("+919800000002", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    test, plan = operations.test_send(world.rt, campaign.id, ["98000 00001"])
    assert test.is_test and test.parent_id == campaign.id and plan.total == 1
    assert set(rows(world, test.id)) == {tester}
    operations.launch(world.rt, campaign.id)
    assert rows(world, campaign.id)[tester] == ("pending", None, 0)  # not engaged by the test
    assert voter in rows(world, campaign.id)


def test_test_numbers_must_be_contacts(world: World) -> None:
    campaign = world.campaign(BOOTH_SPEC)
    with pytest.raises(operations.CampaignError, match=r"\+919800000099 is not a contact"):
        operations.test_send(world.rt, campaign.id, ["+919800000099"])
