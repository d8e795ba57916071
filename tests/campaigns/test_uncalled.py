"""The not-yet-called list: sending threads take their rows out together, each told of its own."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis as redis_lib

from campaigns.uncalled import Uncalled

THREADS = 64


class HeldRedis:
    """The real connection, whose first round trip waits until ``queued()`` says go."""

    def __init__(self, conn: redis_lib.Redis, queued: Any) -> None:
        self.conn = conn
        self.queued = queued
        self.first = True

    def _hold(self) -> None:
        if self.first:
            self.first = False
            assert _wait(self.queued), "the other threads never queued"

    def srem(self, *args: Any) -> Any:
        self._hold()
        return self.conn.srem(*args)

    def pipeline(self, **kw: Any) -> Any:
        self._hold()
        return self.conn.pipeline(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        done.wait(0.01)
    return False


def _take_all(uncalled: Uncalled, rids: list[int]) -> dict[int, Any]:
    results: dict[int, Any] = {}
    start = threading.Barrier(len(rids))

    def one(rid: int) -> None:
        start.wait()
        try:
            results[rid] = uncalled.take(rid)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results[rid] = exc

    threads = [threading.Thread(target=one, args=(rid,)) for rid in rids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a taking thread hung"
    return results


def test_threads_asking_during_a_round_trip_share_the_next_one(redis: redis_lib.Redis) -> None:
    listed = Uncalled(redis, 7)
    rids = list(range(1, THREADS + 1))
    listed.add([r for r in rids if r % 4])  # every fourth row is not listed (the reconciler took it)
    uncalled = Uncalled(redis, 7)
    uncalled.conn = HeldRedis(redis, lambda: len(uncalled._asks) == THREADS - 1)
    results = _take_all(uncalled, rids)
    assert results == {r: bool(r % 4) for r in rids}
    # The first thread's own round trip, then one for the 63 that asked meanwhile.
    assert uncalled.round_trips == 2
    assert redis.smembers(listed.key) == set()


def test_each_row_is_taken_once_whoever_races_for_it(redis: redis_lib.Redis) -> None:
    rids = list(range(1, 201))
    Uncalled(redis, 8).add(rids)
    a, b = Uncalled(redis, 8), Uncalled(redis, 8)  # two jobs (or a job and the reconciler)
    won_by_a: dict[int, Any] = {}
    won_by_b: set[int] = set()

    def reconciler() -> None:
        won_by_b.update(b.take_many(rids[::-1]))

    rival = threading.Thread(target=reconciler)
    rival.start()
    won_by_a = _take_all(a, rids)
    rival.join()
    assert all(isinstance(v, bool) for v in won_by_a.values())
    mine = {r for r, took in won_by_a.items() if took}
    assert mine.isdisjoint(won_by_b) and mine | won_by_b == set(rids)


def test_a_lone_send_pays_one_plain_round_trip(redis: redis_lib.Redis) -> None:
    uncalled = Uncalled(redis, 9)
    uncalled.add([5])
    assert uncalled.take(5) is True
    assert uncalled.take(5) is False
    assert uncalled.round_trips == 2


def test_a_redis_error_reaches_every_thread_of_its_round_and_the_next_round_works(redis: redis_lib.Redis) -> None:
    uncalled = Uncalled(redis, 10)
    uncalled.add(list(range(1, 21)))
    broken = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens there
    uncalled.conn = HeldRedis(broken, lambda: len(uncalled._asks) == 19)
    results = _take_all(uncalled, list(range(1, 21)))
    assert all(isinstance(v, redis_lib.ConnectionError) for v in results.values()), results
    uncalled.conn = redis
    assert _take_all(uncalled, list(range(1, 21))) == dict.fromkeys(range(1, 21), True)


def test_any_error_of_a_round_reaches_its_threads_and_none_waits_forever(redis: redis_lib.Redis) -> None:
    uncalled = Uncalled(redis, 12)
    uncalled.add(list(range(1, 11)))
    real = uncalled.take_many
    calls = 0

    def failing_once(rids):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            assert _wait(lambda: len(uncalled._asks) == 9), "the other threads never queued"
            raise ValueError("a bug below us")
        return real(rids)

    uncalled.take_many = failing_once  # type: ignore[method-assign]
    results = _take_all(uncalled, list(range(1, 11)))
    # The first round (one row) failed; the nine that queued meanwhile were served next.
    failed = [r for r, v in results.items() if isinstance(v, ValueError)]
    assert len(failed) == 1
    assert all(v is True for r, v in results.items() if r not in failed)
    assert uncalled.take(failed[0]) is True  # nothing stuck: the failed row is still listed


@pytest.mark.parametrize("rows", [1, 3])
def test_take_many_tells_which_rows_were_taken(redis: redis_lib.Redis, rows: int) -> None:
    uncalled = Uncalled(redis, 11)
    uncalled.add([1, 2])
    asked = [1, 2, 3][:rows]
    assert uncalled.take_many(asked) == {1, 2} & set(asked)
    assert uncalled.take_many(asked) == set()
