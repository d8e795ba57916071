"""When a campaign will finish, counting only the time its windows allow."""

from __future__ import annotations

import datetime as dt

from bot.sendwindows import PRESETS, Blackout, Policy, SendWindow
from campaigns.eta import estimate, estimate_by_zone

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def ist(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=IST).astimezone(dt.UTC)


def test_without_windows_it_is_remaining_over_rate() -> None:
    eta = estimate(ist(1, 12), 3600, 2.0, Policy(), "Asia/Kolkata")
    assert eta.finishes_at == ist(1, 12, 30) and not eta.late and eta.warning() is None


def test_windows_carry_the_rest_to_the_next_morning() -> None:
    policy = Policy((PRESETS["india_promotional"],))  # 09:00-21:00 IST
    eta = estimate(ist(1, 20), 7200, 1.0, policy, "Europe/London")  # an hour tonight, an hour tomorrow
    assert eta.finishes_at == ist(2, 10)
    # Started at night, it begins at 09:00.
    assert estimate(ist(1, 23), 1800, 1.0, policy, "UTC").finishes_at == ist(2, 9, 30)


def test_a_blackout_for_everyone_is_skipped_over() -> None:
    silence = Blackout(ist(2, 0), ist(3, 12))
    eta = estimate(ist(1, 20), 7200, 1.0, Policy((PRESETS["india_promotional"],), (silence,)), "UTC")
    assert eta.finishes_at == ist(3, 13)


def test_a_deadline_that_cannot_be_met_is_a_warning() -> None:
    policy = Policy((PRESETS["india_election"],))
    eta = estimate(ist(19, 12), 100_000, 1.0, policy, "UTC", deadline=ist(20, 7))
    assert eta.late
    assert eta.warning().startswith("cannot finish before the deadline 2026-11-20T01:30:00Z: 100000 left at 1/s")  # type: ignore[union-attr]
    assert not estimate(ist(19, 12), 1000, 1.0, policy, "UTC", deadline=ist(20, 7)).late


def test_windows_that_never_open_have_no_eta() -> None:
    policy = Policy((SendWindow(dt.time(8), dt.time(9), "UTC"), SendWindow(dt.time(20), dt.time(21), "UTC")))
    eta = estimate(ist(1, 12), 10, 1.0, policy, "UTC", deadline=ist(2, 12))
    assert eta.finishes_at is None and eta.late and "finish at never" in (eta.warning() or "")
    assert estimate(ist(1, 12), 0, 1.0, policy, "UTC").finishes_at == ist(1, 12)


def test_voters_a_tagged_silence_holds_past_the_deadline_are_a_warning() -> None:
    silenced = (("constituency=kothrud", 420, ist(18, 18)),)
    # Not done before the silence starts: its voters may be left out.
    slow = estimate(ist(18, 12), 30_000, 1.0, Policy(), "UTC", deadline=ist(20, 18), silenced=silenced)
    assert not slow.late
    assert slow.warning() == (
        "420 waiting voter(s) with constituency=kothrud are silenced from 2026-11-18T12:30:00Z until past the "
        "deadline: those not sent by then will be skipped (outside_blackout)"
    )
    # Done well before it: nothing to say.
    assert estimate(ist(18, 12), 600, 1.0, Policy(), "UTC", deadline=ist(20, 18), silenced=silenced).warning() is None


# 09:00-21:00 in each voter's own time.
OWN_DAY = Policy((SendWindow(dt.time(9), dt.time(21)),))


def test_each_zone_is_sent_inside_its_own_window() -> None:
    # At noon in India it is 01:30 in New York: India's voters go first, New York's from 09:00 there (19:30 IST).
    both = {"Asia/Kolkata": 3600, "America/New_York": 3600}
    eta = estimate_by_zone(ist(1, 12), both, 1.0, OWN_DAY)
    assert eta.finishes_at == ist(1, 20, 30) and eta.remaining == 7200
    # Read in the larger zone alone, as before, it said 14:00.
    assert estimate(ist(1, 12), 7200, 1.0, OWN_DAY, "Asia/Kolkata").finishes_at == ist(1, 14)


def test_zones_open_at_once_share_the_pace() -> None:
    # Dubai is 1 h 30 behind India: both open at noon IST, both done two hours later at 1/s.
    eta = estimate_by_zone(ist(1, 12), {"Asia/Kolkata": 3600, "Asia/Dubai": 3600}, 1.0, OWN_DAY)
    assert eta.finishes_at == ist(1, 14)
    # India closes at 21:00 IST with half of its voters left; Dubai (open until 22:30 IST) goes on alone.
    eta = estimate_by_zone(ist(1, 20), {"Asia/Kolkata": 7200, "Asia/Dubai": 3600}, 1.0, OWN_DAY)
    # 20:00-21:00: 3600 sent, 2400 of India's and 1200 of Dubai's; Dubai's other 2400 by 21:40;
    # India's other 4800 from 09:00 the next day: 10:20.
    assert eta.finishes_at == ist(2, 10, 20)


def test_voters_of_a_zone_where_the_windows_never_meet_are_left_out_and_named() -> None:
    never = Policy((SendWindow(dt.time(9), dt.time(10), "Asia/Kolkata"), SendWindow(dt.time(9), dt.time(21))))
    eta = estimate_by_zone(ist(1, 9), {"Asia/Kolkata": 10, "America/New_York": 10}, 1.0, never)
    assert eta.finishes_at == ist(1, 9, 0) + dt.timedelta(seconds=10) and eta.remaining == 20
    assert eta.closed == (("America/New_York", 10),)
    assert eta.warning() == (
        "waiting voters in time zones where the send windows never overlap will be skipped (outside_blackout): "
        "America/New_York (10)"
    )
    alone = estimate_by_zone(ist(1, 9), {"America/New_York": 10}, 1.0, never)
    assert alone.finishes_at is None and alone.closed == (("America/New_York", 10),)


def test_many_zones_far_and_beyond_sight() -> None:
    zones = ["Asia/Kolkata", "Asia/Dubai", "Europe/London", "America/New_York", "America/Chicago", "Asia/Tokyo"]
    zones += ["Australia/Sydney", "Europe/Berlin", "America/Denver", "America/Los_Angeles", "Pacific/Honolulu"]
    # 10.5 M at 0.05/s would take years even without a pause: no end in sight.
    assert estimate_by_zone(ist(1, 12), dict.fromkeys(zones, 700_000), 0.05, OWN_DAY).finishes_at is None
    # 11 zones x 10,000 at 0.05/s: 25.5 days of sending; some zone is open nearly all the time.
    eta = estimate_by_zone(ist(1, 12), dict.fromkeys(zones, 10_000), 0.05, OWN_DAY)
    unpaused = ist(1, 12) + dt.timedelta(seconds=110_000 / 0.05)
    assert eta.finishes_at is not None and unpaused <= eta.finishes_at < unpaused + dt.timedelta(days=2)


def test_a_zone_whose_windows_stop_overlapping_at_a_clock_change_is_left_out_from_then() -> None:
    # 09:00-10:00 IST is 23:30-00:30 in New York in October (EDT), 22:30-23:30 from 1 November (EST):
    # with 23:45-00:15 New York time it meets half an hour a night, then never.
    policy = Policy((SendWindow(dt.time(9), dt.time(10), "Asia/Kolkata"), SendWindow(dt.time(23, 45), dt.time(0, 15))))
    october = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
    eta = estimate_by_zone(october, {"America/New_York": 10_000}, 0.1, policy)
    # 180 sent a night for 31 nights; the 4,420 left are named as never reachable.
    assert eta.closed == (("America/New_York", 4_420),)
    assert eta.finishes_at is not None and eta.finishes_at.date() == dt.date(2026, 11, 1)
