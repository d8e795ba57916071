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


def test_a_send_that_raises_is_raised_after_the_outcomes_collected_with_it() -> None:
    def boom() -> int:
        raise RuntimeError("bug in a send")

    with SendPool[int](2, "t") as pool:
        pool.submit(lambda: 1)
        pool.submit(boom)
        assert pool.wait_all(timeout=5)
        assert pool.collect() == [1]  # the outcome beside it is not lost
        with pytest.raises(RuntimeError, match="bug in a send"):
            pool.raise_failure()
        pool.raise_failure()  # raised once
        assert pool.in_flight == 0


def _drain(pool: SendPool[int], n: int) -> list[int]:
    got: list[int] = []
    while len(got) < n:
        assert pool.wait_all(timeout=5) or pool.finished()
        got += pool.collect()
    return got


def test_the_next_job_gets_the_threads_the_last_one_left_idle() -> None:
    """A worker's batch jobs, one after the other, start the threads once."""
    release = threading.Event()
    with SendPool[int].lend(3, "job1") as first:
        for i in range(3):
            first.submit(lambda i=i: release.wait(5) and i)
        release.set()
        assert sorted(_drain(first, 3)) == [0, 1, 2]
        threads = list(first._threads)
    assert len(threads) == 3 and all(t.is_alive() for t in threads)
    with SendPool[int].lend(3, "job2") as second:
        assert second is first
        assert [t.name for t in second._threads] == ["job2_0", "job2_1", "job2_2"]
        for i in range(6):
            second.submit(lambda i=i: i * 2)
        assert sorted(_drain(second, 6)) == [0, 2, 4, 6, 8, 10]
        assert second._threads == threads  # no thread started for the second job
    # Two jobs at once each have a pool of their own.
    with SendPool[int].lend(3, "a") as a, SendPool[int].lend(3, "b") as b:
        assert a is not b
    SendPool._forget_spare()


def test_a_pool_left_with_sends_not_collected_is_closed_not_lent_again() -> None:
    release = threading.Event()
    with SendPool[int].lend(2, "job1") as pool:
        pool.submit(lambda: release.wait(5) and 1)
        release.set()
        assert pool.wait_all(timeout=5)
        threads = list(pool._threads)
        # The job stops without collecting its last outcome (it raised, say).
    assert not any(t.is_alive() for t in threads)
    with SendPool[int].lend(2, "job2") as other:
        assert other is not pool
    SendPool._forget_spare()


def test_a_forked_child_does_not_borrow_its_parents_threads() -> None:
    import os

    with SendPool[int].lend(2, "parent") as pool:
        pool.submit(lambda: 1)
        assert _drain(pool, 1) == [1]
    assert SendPool._spare[2] == [pool]
    child = os.fork()
    if child == 0:  # the child: its pool must work (the parent's threads are not here)
        ok = False
        try:
            with SendPool[int].lend(2, "child") as mine:
                mine.submit(lambda: 7)
                ok = mine is not pool and mine.wait_all(timeout=5) and mine.collect() == [7]
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    SendPool._forget_spare()
