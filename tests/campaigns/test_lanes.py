"""Lanes: campaigns on the same workers take turns; a small one launched during a big one is not starved."""

from __future__ import annotations

import dataclasses

import pytest
from rq import Queue
from rq.job import Job

from campaigns import dispatch, lanes, operations, planner, reconciler
from tests.campaigns.conftest import BOOTH_SPEC, World

BIG = BOOTH_SPEC.replace("audience: {tag: ward}", 'audience: {tag: ward, eq: "3"}')
SMALL = BOOTH_SPEC.replace("audience: {tag: ward}", 'audience: {tag: ward, eq: "4"}').replace(
    "Booth reminder", "Late small campaign"
)


def run_next(world: World) -> tuple[int, int] | None:
    """Run the job at the head of the send queue as a worker would; return (campaign, batch)."""
    raw = world.rt.redis.lpop(Queue(planner.SEND_QUEUE, connection=world.rt.redis).key)
    if raw is None:
        return None
    job = Job.fetch(raw.decode(), connection=world.rt.redis)
    campaign_id, batch = job.args
    first_run = job.id == planner.job_id(campaign_id, batch)
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign_id, batch, first_run=first_run)
    return campaign_id, batch


def two_campaigns(world: World) -> tuple[int, int, list[tuple[int, int]]]:
    """A big campaign (6 batches) sends one batch, then a small one (2 batches) is launched; run all."""
    for i in range(30):
        world.voter(f"+91980000{i:04d}", "ward=3")
    for i in range(10):
        world.voter(f"+91981000{i:04d}", "ward=4")
    big = world.campaign(BIG, batch_size=5)
    small = world.campaign(SMALL, batch_size=5)
    assert operations.launch(world.rt, big.id).batches == [0, 1, 2, 3, 4, 5]
    order = [run_next(world)]
    assert operations.launch(world.rt, small.id).batches == [0, 1]
    while (ran := run_next(world)) is not None:
        order.append(ran)
    return big.id, small.id, [o for o in order if o is not None]


def test_a_small_campaign_launched_during_a_big_one_goes_next_in_turn(world: World) -> None:
    big, small, order = two_campaigns(world)
    # Two lanes: the big campaign's two queued batches, then the small one's, then the rest
    # of the big one (each batch that ends queues its successor at the back).
    assert order == [(big, 0), (big, 1), (big, 2), (small, 0), (small, 1), (big, 3), (big, 4), (big, 5)]
    assert world.get(big).status == world.get(small).status == "completed"
    assert lanes.waiting(world.rt.redis, big) == set()


def test_only_batches_that_queue_no_successor_count_what_is_left(world: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Counting a campaign's unsettled rows reads all of them: at every batch's end, that was
    # quadratic in the campaign's size. A batch that queued the next one knows it is not done.
    checked: list[int] = []
    real = operations.complete_if_done

    def counted(db, campaign_id):  # type: ignore[no-untyped-def]
        checked.append(campaign_id)
        return real(db, campaign_id)

    monkeypatch.setattr(operations, "complete_if_done", counted)
    big, small, order = two_campaigns(world)
    assert len(order) == 8
    # Six batches in two lanes: the first four each queued a successor; the last two did not.
    assert checked.count(big) == 2 and checked.count(small) == 2
    assert world.get(big).status == world.get(small).status == "completed"


def test_without_lanes_the_small_campaign_would_wait_for_all_of_the_big_one(world: World) -> None:
    # The control: every batch queued at once (as many lanes as batches) is first come, first served.
    world.rt.settings = dataclasses.replace(world.rt.settings, campaign_lanes=64)
    big, small, order = two_campaigns(world)
    assert order[-2:] == [(small, 0), (small, 1)] and order[0] == (big, 0)


def test_a_waiting_batch_lost_with_redis_is_queued_again_in_lanes(world: World) -> None:
    for i in range(20):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC, batch_size=5)
    operations.launch(world.rt, campaign.id)
    assert lanes.waiting(world.rt.redis, campaign.id) == {2, 3}
    world.rt.redis.flushdb()  # the queue and the waiting set are gone; the database knows
    assert reconciler.reconcile(world.rt)["requeued"] == 2
    queue = Queue(planner.SEND_QUEUE, connection=world.rt.redis)
    assert queue.job_ids == [planner.job_id(campaign.id, 0), planner.job_id(campaign.id, 1)]
    assert lanes.waiting(world.rt.redis, campaign.id) == {2, 3}
    assert reconciler.reconcile(world.rt)["requeued"] == 0  # nothing more while they wait their turn


def test_a_broken_chain_is_mended_by_the_reconciler(world: World) -> None:
    for i in range(20):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC, batch_size=5)
    operations.launch(world.rt, campaign.id)
    queue = Queue(planner.SEND_QUEUE, connection=world.rt.redis)
    # Both queued batches were run by a worker that died before queueing their successors.
    for batch in (0, 1):
        assert world.rt.redis.lpop(queue.key) == planner.job_id(campaign.id, batch).encode()
        dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, batch, first_run=False)
    assert queue.job_ids == [] and lanes.waiting(world.rt.redis, campaign.id) == {2, 3}
    assert reconciler.reconcile(world.rt)["requeued"] == 2
    assert queue.job_ids == [planner.job_id(campaign.id, 2), planner.job_id(campaign.id, 3)]
    while run_next(world) is not None:
        pass
    assert world.get(campaign.id).status == "completed"


def test_a_retry_does_not_take_a_second_lane(world: World, scripted) -> None:  # type: ignore[no-untyped-def]
    from bot.channels import SendError
    from bot.channels.base import Sent

    for i in range(15):
        world.voter(f"+91980000{i:04d}", "ward=3")
    campaign = world.campaign(BOOTH_SPEC, batch_size=5)
    failing = {"+919800000000"}

    def answer(message):  # type: ignore[no-untyped-def]
        if message.to in failing:
            failing.clear()
            raise SendError("busy", code="20429", retryable=True)
        return Sent(provider_id=f"SM{message.message_id:032d}", status="sent")

    scripted(answer)
    operations.launch(world.rt, campaign.id)
    assert run_next(world) == (campaign.id, 0)  # one retryable failure: a retry job is scheduled
    assert lanes.waiting(world.rt.redis, campaign.id) == set()  # batch 2 took batch 0's lane
    retry_id = f"{planner.job_id(campaign.id, 0)}-r1"
    assert retry_id in Queue(planner.SEND_QUEUE, connection=world.rt.redis).scheduled_job_registry.get_job_ids()
    dispatch.send_batch(world.rt.db, world.rt.settings, world.rt.redis, campaign.id, 0, first_run=False)
    assert Queue(planner.SEND_QUEUE, connection=world.rt.redis).job_ids == [
        planner.job_id(campaign.id, 1),
        planner.job_id(campaign.id, 2),
    ]


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_the_lanes_setting_is_checked(value: str) -> None:
    from bot.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="CANVASS_CAMPAIGN_LANES"):
        Settings.from_env(environ={"CANVASS_CAMPAIGN_LANES": value})
