"""The pace limiter in real Redis: exact spacing, shared by every caller, several paces at once."""

from __future__ import annotations

import itertools
import math
import threading

import pytest

from campaigns.ratelimit import Limiter, Pace, tolerance, wait_until


def test_slots_are_spaced_by_the_rate(redis) -> None:  # type: ignore[no-untyped-def]
    limiter = Limiter(redis)
    pace = Pace("t:a", rate=10)
    first = limiter.reserve([pace], 5, now=1000.0)
    assert first == pytest.approx([1000.0, 1000.1, 1000.2, 1000.3, 1000.4])
    # The schedule goes on from where it stopped, not from "now".
    assert limiter.reserve([pace], 2, now=1000.05) == pytest.approx([1000.5, 1000.6])
    # Idle time is not saved up beyond the burst (1): after a pause the next slot is now.
    assert limiter.reserve([pace], 1, now=2000.0) == pytest.approx([2000.0])


def test_burst_lets_a_few_go_at_once(redis) -> None:  # type: ignore[no-untyped-def]
    limiter = Limiter(redis)
    slots = limiter.reserve([Pace("t:b", rate=1, burst=3)], 4, now=500.0)
    assert slots == pytest.approx([500.0, 500.0, 500.0, 501.0])  # 3 at once, then 1 a second


def test_the_slowest_pace_rules_and_every_schedule_moves(redis) -> None:  # type: ignore[no-untyped-def]
    limiter = Limiter(redis)
    sender, campaign = Pace("t:sender", rate=100), Pace("t:campaign", rate=2)
    assert limiter.reserve([campaign, sender], 3, now=10.0) == pytest.approx([10.0, 10.5, 11.0])
    # Another campaign on the same sender gets the sender's next free moments, not 10.0.
    other = Pace("t:other", rate=100)
    got = limiter.reserve([other, sender], 2, now=10.0)
    assert got == pytest.approx([11.01, 11.02])


def test_many_threads_never_share_a_slot(redis) -> None:  # type: ignore[no-untyped-def]
    pace = Pace("t:shared", rate=1000)
    got: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        limiter = Limiter(redis)
        for _ in range(50):
            slots = limiter.reserve([pace], 2, now=100.0)
            with lock:
                got.extend(slots)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ordered = sorted(got)
    assert len(ordered) == 800
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert min(gaps) == pytest.approx(0.001, abs=1e-6)  # exactly one interval apart, never closer
    assert ordered[-1] - ordered[0] == pytest.approx(0.799, abs=1e-6)


def test_bad_paces_are_refused() -> None:
    with pytest.raises(ValueError, match="rate must be more than 0"):
        Pace("x", rate=0)
    with pytest.raises(ValueError, match="burst must be at least 1"):
        Pace("x", rate=1, burst=0)


def test_wait_until_sleeps_only_for_future_moments() -> None:
    slept: list[float] = []
    wait_until(10.0, sleep=slept.append, clock=lambda: 9.25)
    wait_until(8.0, sleep=slept.append, clock=lambda: 9.25)
    assert slept == [0.75]


def test_a_send_may_be_late_by_half_an_interval_of_the_fastest_pace() -> None:
    assert tolerance([Pace("a", rate=80), Pace("b", rate=20)]) == pytest.approx(0.00625)
    # Faster than 250/s, half an interval is under what a thread's wake-up can promise:
    # such a pace (a fast sender's) does not loosen the check of a slower one (the campaign's).
    assert tolerance([Pace("campaign", rate=80), Pace("sender", rate=320)]) == pytest.approx(0.00625)
    assert tolerance([Pace("a", rate=1000)]) == math.inf
    assert tolerance([]) == math.inf
