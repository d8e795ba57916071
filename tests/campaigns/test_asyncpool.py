"""The batch job's sends as coroutines on one event loop (campaigns.asyncpool)."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading

import pytest

from campaigns.asyncpool import AsyncSendPool, _Loop


def test_outcomes_come_back_once_each_and_never_more_than_the_size_run() -> None:
    running, most = [0], [0]

    async def send(i: int) -> int:
        running[0] += 1  # on the loop's one thread: no lock needed
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.01)
        running[0] -= 1
        return i * 10

    got: list[int] = []
    with AsyncSendPool[int](4, "t") as pool:
        for i in range(40):
            pool.submit(send, i)
        assert pool.in_flight == 40
        while len(got) < 40:
            assert pool.wait_all(timeout=5) or pool.finished()
            got += pool.collect()
        assert pool.in_flight == 0 and pool.collect() == []
    assert sorted(got) == [i * 10 for i in range(40)]
    assert most[0] == 4


def test_sends_run_in_the_order_submitted_when_they_wait_for_room() -> None:
    order: list[int] = []

    async def send(i: int) -> int:
        order.append(i)
        await asyncio.sleep(0)
        return i

    with AsyncSendPool[int](1, "t") as pool:
        for i in range(10):
            pool.submit(send, i)
        assert pool.wait_all(timeout=5)
        assert sorted(pool.collect()) == list(range(10))
    assert order == list(range(10))


def test_every_pool_of_a_process_shares_one_loop_thread() -> None:
    threads: set[str] = set()

    async def where() -> int:
        threads.add(threading.current_thread().name)
        return 1

    with AsyncSendPool[int](2, "a") as a, AsyncSendPool[int](2, "b") as b:
        a.submit(where)
        b.submit(where)
        assert a.wait_all(timeout=5) and b.wait_all(timeout=5)
        assert a.collect() == b.collect() == [1]
    assert threads == {"async-sends"}


def test_wait_all_times_out_while_a_send_runs_and_close_waits_for_it() -> None:
    release = threading.Event()

    async def slow() -> str:
        while not release.is_set():
            await asyncio.sleep(0.005)
        return "done"

    pool = AsyncSendPool[str](2, "t")
    pool.submit(slow)
    assert not pool.wait_all(timeout=0.05)
    assert pool.finished() == 0 and pool.in_flight == 1
    threading.Timer(0.1, release.set).start()
    pool.close()  # returns once the send is over
    assert pool.collect() == ["done"]


def test_a_send_that_raises_is_raised_after_the_outcomes_collected_with_it() -> None:
    async def fine() -> int:
        return 1

    async def boom() -> int:
        raise RuntimeError("bug in a send")

    with AsyncSendPool[int](2, "t") as pool:
        pool.submit(fine)
        pool.submit(boom)
        assert pool.wait_all(timeout=5)
        assert pool.collect() == [1]  # the outcome beside it is not lost
        with pytest.raises(RuntimeError, match="bug in a send"):
            pool.raise_failure()
        pool.raise_failure()  # raised once
        assert pool.in_flight == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_process_runs_its_sends_on_a_loop_of_its_own() -> None:
    async def pid() -> int:
        return os.getpid()

    with AsyncSendPool[int](2, "parent") as pool:
        pool.submit(pid)
        assert pool.wait_all(timeout=5) and pool.collect() == [os.getpid()]
    parent_loop = _Loop.get().loop
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        ok = 0
        try:
            with AsyncSendPool[int](2, "child") as mine:
                mine.submit(pid)
                ok = int(
                    mine.wait_all(timeout=5) and mine.collect() == [os.getpid()] and _Loop.get().loop is not parent_loop
                )
        finally:
            os.write(write, str(ok).encode())
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 10)
    answer = os.read(read, 8) if ready else b"the child hung"
    if not ready:
        os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    assert answer == b"1"


def test_a_loop_whose_thread_died_is_replaced_and_its_pool_raises_instead_of_waiting_forever() -> None:
    async def never() -> int:
        await asyncio.sleep(3600)
        return 0

    pool = AsyncSendPool[int](2, "doomed")
    pool.submit(never)
    dead = _Loop.get()
    dead.loop.call_soon_threadsafe(dead.loop.stop)
    dead.thread.join(timeout=5)
    with pytest.raises(RuntimeError, match="event loop stopped"):
        pool.close()
    with AsyncSendPool[int](2, "next") as fresh:  # the next job gets a loop that runs
        fresh.submit(asyncio.sleep, 0, 7)
        assert fresh.wait_all(timeout=5) and fresh.collect() == [7]
    assert _Loop.get() is not dead
