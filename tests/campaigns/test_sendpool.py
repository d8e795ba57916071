"""The batch job's sending threads (campaigns.sendpool)."""

from __future__ import annotations

import threading
import time

import pytest

from campaigns.sendpool import SendPool


def test_outcomes_come_back_once_each_and_threads_never_exceed_the_size() -> None:
    running, most, lock = [0], [0], threading.Lock()

    def send(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return i * 10

    got: list[int] = []
    with SendPool[int](4, "t") as pool:
        for i in range(40):
            pool.submit(send, i)
        assert pool.in_flight == 40 - len(got)
        while len(got) < 40:
            assert pool.wait_all(timeout=5) or pool.finished()
            got += pool.collect()
        assert pool.in_flight == 0 and pool.collect() == []
    assert sorted(got) == [i * 10 for i in range(40)]
    assert most[0] == 4


def test_a_free_thread_takes_the_next_send_before_a_new_one_starts() -> None:
    """A fast provider is served by as few threads as it needs."""
    with SendPool[int](96, "t") as pool:
        for i in range(20):
            pool.submit(lambda i=i: i)
            assert pool.wait_all(timeout=5)
        assert len(pool._threads) == 1
        assert sorted(pool.collect()) == list(range(20))


def test_wait_all_times_out_while_a_send_runs() -> None:
    release = threading.Event()
    with SendPool[str](2, "t") as pool:
        pool.submit(lambda: release.wait(5) and "done")
        started = time.monotonic()
        assert not pool.wait_all(timeout=0.05)
        assert time.monotonic() - started < 1
        assert pool.finished() == 0 and pool.in_flight == 1
        release.set()
        assert pool.wait_all(timeout=5)
        assert pool.collect() == ["done"]


def test_a_send_that_raises_is_raised_when_collected_after_the_others_are_counted() -> None:
    def boom() -> int:
        raise RuntimeError("bug in a send")

    with SendPool[int](2, "t") as pool:
        pool.submit(lambda: 1)
        pool.submit(boom)
        assert pool.wait_all(timeout=5)
        with pytest.raises(RuntimeError, match="bug in a send"):
            pool.collect()
        assert pool.in_flight == 0
