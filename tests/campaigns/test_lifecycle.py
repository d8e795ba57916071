"""The campaign lifecycle: every allowed move works, every other move is refused with a reason."""

from __future__ import annotations

import itertools

import pytest

from campaigns import lifecycle
from campaigns.lifecycle import TransitionRefused
from campaigns.models import Campaign, CampaignStatus

S = CampaignStatus
# DESIGN.md §5, written out pair by pair (not derived from the code under test).
TABLE = {
    ("draft", "ready"),
    ("ready", "draft"),
    ("ready", "scheduled"),
    ("ready", "active"),
    ("scheduled", "ready"),
    ("scheduled", "active"),
    ("active", "paused"),
    ("paused", "active"),
    ("active", "completed"),
    ("completed", "ended"),
    ("draft", "aborted"),
    ("ready", "aborted"),
    ("scheduled", "aborted"),
    ("active", "aborted"),
    ("paused", "aborted"),
}
PAIRS = [(a.value, b.value) for a, b in itertools.product(S, S) if a != b]


@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_allowed_is_exactly_the_table(current: str, target: str) -> None:
    assert lifecycle.allowed(current, target) == ((current, target) in TABLE)


@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_move_on_the_database(db, current: str, target: str) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        campaign = Campaign(name="c", channel="sms", status=current, segment={})
        s.add(campaign)
        s.flush()
        if (current, target) in TABLE:
            lifecycle.move(s, campaign, S(target))
            assert campaign.status == target
            stamp = lifecycle.STAMPS.get(S(target))
            if stamp:
                assert getattr(campaign, stamp) is not None
        else:
            with pytest.raises(TransitionRefused) as refused:
                lifecycle.move(s, campaign, S(target))
            assert f"campaign {campaign.id} is {current}" in str(refused.value)
            assert campaign.status == current


def test_a_move_that_lost_a_race_is_refused(db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        campaign = Campaign(name="c", channel="sms", status="active", segment={})
        s.add(campaign)
        s.flush()
        campaign_id = campaign.id
    with db.session() as first, db.session() as second:
        mine = first.get(Campaign, campaign_id)
        theirs = second.get(Campaign, campaign_id)
        assert mine is not None and theirs is not None
        second.commit()  # the second operator's page shows "active"; their next click is a new transaction
        lifecycle.move(first, mine, S.PAUSED)
        first.commit()
        # They read "active" before the pause landed: the conditional UPDATE sees "paused".
        with pytest.raises(TransitionRefused, match="is paused"):
            lifecycle.move(second, theirs, S.COMPLETED)


def test_final_statuses_say_so() -> None:
    with pytest.raises(TransitionRefused, match=r"nothing \(it is final\)"):
        raise TransitionRefused(1, "ended", "active")
