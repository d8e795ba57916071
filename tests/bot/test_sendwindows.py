"""Send windows and blackouts with a fixed clock: time zones, IST, DST, constituencies."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.sendwindows import PRESETS, Blackout, Policy, PolicyError, SendWindow, parse_blackouts, parse_windows

UTC = dt.UTC
KOLKATA, NEW_YORK, LONDON = "Asia/Kolkata", "America/New_York", "Europe/London"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("when", "zone", "allowed", "next_open"),
    [
        # 07:59 in New York (EST, -05:00) is too early; 08:00 opens it.
        ("2026-11-30T12:59:00+00:00", NEW_YORK, False, "2026-11-30T08:00:00-05:00"),
        ("2026-11-30T13:00:00+00:00", NEW_YORK, True, "2026-11-30T08:00:00-05:00"),
        # 21:00 sharp is closed; the next opening is tomorrow 08:00.
        ("2026-12-01T02:00:00+00:00", NEW_YORK, False, "2026-12-01T08:00:00-05:00"),
        # The same UTC moment is 07:30 in Kolkata: closed there, per voter.
        ("2026-12-01T02:00:00+00:00", KOLKATA, False, "2026-12-01T08:00:00+05:30"),
    ],
)
def test_tcpa_in_the_voters_own_time(when: str, zone: str, allowed: bool, next_open: str) -> None:
    window = PRESETS["us_tcpa"]
    assert window.allows(at(when), zone) is allowed
    if not allowed:
        assert window.next_open(at(when), zone) == at(next_open)


def test_india_rules_are_in_ist_whatever_the_voters_zone() -> None:
    promo = PRESETS["india_promotional"]
    # 09:00 IST is 03:30 UTC; a voter whose contact says Europe/London is still held to IST.
    assert not promo.allows(at("2026-11-30T03:29:00+00:00"), LONDON)
    assert promo.allows(at("2026-11-30T03:30:00+00:00"), LONDON)
    ban = PRESETS["india_election"]
    assert not ban.allows(at("2026-11-30T22:00:00+05:30"), KOLKATA)
    assert not ban.allows(at("2026-12-01T05:59:00+05:30"), KOLKATA)
    assert ban.next_open(at("2026-11-30T23:15:00+05:30"), KOLKATA) == at("2026-12-01T06:00:00+05:30")


def test_daylight_saving_changes_move_the_opening_with_the_clock() -> None:
    window = PRESETS["us_tcpa"]
    # 8 March 2026: New York springs forward; 08:00 EDT is 12:00 UTC (13:00 the day before).
    assert window.next_open(at("2026-03-08T02:00:00-05:00"), NEW_YORK) == at("2026-03-08T12:00:00+00:00")
    assert window.next_open(at("2026-03-07T02:00:00-05:00"), NEW_YORK) == at("2026-03-07T13:00:00+00:00")
    # 1 November 2026: back to EST; 20:59 local is still open, on both sides of the change.
    assert window.allows(at("2026-11-01T20:59:00-05:00"), NEW_YORK)
    assert window.closes(at("2026-11-01T12:00:00-05:00"), NEW_YORK) == at("2026-11-02T02:00:00+00:00")
    # A window starting inside the skipped hour opens when the clock has jumped past it.
    early = SendWindow(dt.time(2, 30), dt.time(5), None)
    assert early.next_open(at("2026-03-08T00:00:00-05:00"), NEW_YORK) == at("2026-03-08T03:30:00-04:00")


def test_a_window_past_midnight() -> None:
    night = SendWindow(dt.time(22), dt.time(6), KOLKATA)
    assert night.allows(at("2026-11-30T23:00:00+05:30"), LONDON)
    assert night.allows(at("2026-12-01T05:00:00+05:30"), LONDON)
    assert not night.allows(at("2026-12-01T12:00:00+05:30"), LONDON)
    assert night.closes(at("2026-11-30T23:00:00+05:30"), LONDON) == at("2026-12-01T06:00:00+05:30")


def test_blackouts_per_constituency_and_windows_together() -> None:
    silence = Blackout(
        at("2026-11-18T18:00:00+05:30"), at("2026-11-20T18:00:00+05:30"), "constituency", "kothrud", "48 h silence"
    )
    policy = Policy((PRESETS["india_election"],), (silence,))
    kothrud, other = {"constituency": "kothrud"}, {"constituency": "pune-central"}
    noon = at("2026-11-19T12:00:00+05:30")
    assert policy.allows(noon, KOLKATA, other)
    assert not policy.allows(noon, KOLKATA, kothrud)
    # The blackout ends at 18:00 on the 20th, inside the window: sending resumes then.
    assert policy.next_allowed(noon, KOLKATA, kothrud) == at("2026-11-20T18:00:00+05:30")
    # At night, the window comes first, then the blackout, then... the window again.
    night_silence = Blackout(at("2026-11-21T05:00:00+05:30"), at("2026-11-21T23:00:00+05:30"))
    both = Policy((PRESETS["india_election"],), (night_silence,))
    assert both.next_allowed(at("2026-11-20T23:00:00+05:30"), KOLKATA, {}) == at("2026-11-22T06:00:00+05:30")
    assert both.open_until(at("2026-11-20T12:00:00+05:30"), KOLKATA, {}) == at("2026-11-20T22:00:00+05:30")
    assert policy.outlasting(at("2026-11-19T00:00:00+05:30"), at("2026-11-20T07:00:00+05:30")) == [silence]
    assert policy.outlasting(at("2026-11-17T00:00:00+05:30"), at("2026-11-20T07:00:00+05:30")) == []


def test_windows_that_never_overlap_are_reported() -> None:
    policy = Policy((SendWindow(dt.time(8), dt.time(9), KOLKATA), SendWindow(dt.time(20), dt.time(21), KOLKATA)))
    with pytest.raises(PolicyError, match="never overlap"):
        policy.next_allowed(at("2026-11-30T10:00:00+05:30"), KOLKATA, {})


def test_parsing_names_the_field() -> None:
    assert parse_windows("us_tcpa") == (PRESETS["us_tcpa"],)
    custom = parse_windows([{"start": "10:00", "end": 1260, "timezone": KOLKATA}, "india_election"])
    assert custom[0] == SendWindow(dt.time(10), dt.time(21), KOLKATA) and custom[1] is PRESETS["india_election"]
    with pytest.raises(PolicyError, match=r"send_window: unknown preset 'night'"):
        parse_windows("night")
    with pytest.raises(PolicyError, match=r"send_window\[0\].start: a time of day"):
        parse_windows([{"start": "9am", "end": "21:00"}])
    with pytest.raises(PolicyError, match="unknown time zone 'Mars/Olympus'"):
        parse_windows({"start": "09:00", "end": "21:00", "timezone": "Mars/Olympus"})
    with pytest.raises(PolicyError, match=r"blackouts\[0\]: .*no UTC offset"):
        parse_blackouts([{"from": "2026-11-18T18:00:00", "to": "2026-11-20T18:00:00+05:30"}])
    with pytest.raises(PolicyError, match="give both tag and value"):
        parse_blackouts([{"from": "2026-11-18T18:00:00Z", "to": "2026-11-20T18:00:00Z", "tag": "constituency"}])


def test_a_blackout_tag_is_matched_as_contacts_tags_are_stored() -> None:
    starts = dt.datetime(2026, 11, 18, 12, 30, tzinfo=dt.UTC)
    blackout = Blackout(starts, starts + dt.timedelta(hours=48), "Constituency", " Kothrud")
    assert (blackout.tag, blackout.value) == ("constituency", "Kothrud")
    policy = Policy(blackouts=(blackout,))
    during = starts + dt.timedelta(hours=1)
    assert not policy.allows(during, "Asia/Kolkata", {"constituency": "kothrud"})
    assert policy.allows(during, "Asia/Kolkata", {"constituency": "baner"})
    assert policy.blacked_out_at(starts + dt.timedelta(hours=48), {"constituency": "KOTHRUD"})  # its end included


def test_a_window_holds_in_every_zone_of_a_split_area() -> None:
    tcpa = Policy(windows=(PRESETS["us_tcpa"],))
    dakota = ("America/Denver", "America/North_Dakota/Center")  # +1 605: Mountain and Central
    # 14:30 UTC in January: 08:30 in Chicago's zone, 07:30 in Denver's. Not yet for both.
    morning = dt.datetime(2026, 1, 15, 14, 30, tzinfo=dt.UTC)
    assert tcpa.allows(morning, "America/North_Dakota/Center", {})
    assert tcpa.next_allowed_in(morning, dakota, {}) == dt.datetime(2026, 1, 15, 15, 0, tzinfo=dt.UTC)
    # 02:30 UTC: 20:30 Central, 19:30 Mountain; closes at 21:00 Central.
    evening = dt.datetime(2026, 1, 16, 2, 30, tzinfo=dt.UTC)
    assert tcpa.next_allowed_in(evening, dakota, {}) == evening
    assert tcpa.open_until_in(evening, dakota, {}) == dt.datetime(2026, 1, 16, 3, 0, tzinfo=dt.UTC)
    # Zones whose windows never meet (09:00-12:00, half a day apart): the first (stored) zone alone.
    short = Policy(windows=(SendWindow(dt.time(9), dt.time(12)),))
    apart = ("Asia/Kolkata", "America/Los_Angeles")
    assert short.next_allowed_in(morning, apart, {}) == short.next_allowed(morning, "Asia/Kolkata", {})


def test_no_send_is_claimed_in_the_last_moments_of_a_window_or_before_a_silence() -> None:
    tcpa = Policy(windows=(PRESETS["us_tcpa"],))
    ny = ("America/New_York",)
    lead = dt.timedelta(seconds=60)
    late = dt.datetime(2026, 7, 1, 0, 59, 30, tzinfo=dt.UTC)  # 20:59:30 EDT
    assert tcpa.next_allowed_in(late, ny, {}) == late
    assert tcpa.next_allowed_in(late, ny, {}, lead) == dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)  # 08:00 EDT
    starts = dt.datetime(2026, 7, 1, 15, 0, 30, tzinfo=dt.UTC)
    silence = Policy(windows=tcpa.windows, blackouts=(Blackout(starts, starts + dt.timedelta(hours=2)),))
    before = dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC)  # 30 s before the silence
    assert silence.next_allowed_in(before, ny, {}, lead) == starts + dt.timedelta(hours=2)
    assert silence.next_allowed_in(before - lead, ny, {}, lead) == before - lead


def test_a_window_ending_in_the_repeated_autumn_hour_closes_at_its_second_coming() -> None:
    """New York, 1 Nov 2026: 01:00-02:00 comes twice (EDT, then EST)."""
    window = SendWindow(dt.time(18), dt.time(1, 30))  # evening to 01:30, the voter's own time
    second_pass = dt.datetime(2026, 11, 1, 6, 10, tzinfo=dt.UTC)  # 01:10 EST, the hour's second coming
    assert window.allows(second_pass, "America/New_York")
    assert window.closes(second_pass, "America/New_York") == dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC)
    # The first coming: closes at 01:30 EDT as before.
    first_pass = dt.datetime(2026, 11, 1, 5, 10, tzinfo=dt.UTC)  # 01:10 EDT
    assert window.closes(first_pass, "America/New_York") == dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)
