"""A batch job's lease in RQ's started registry: short, renewed while the job runs, under a simple worker."""

from __future__ import annotations

import time

import redis as redis_lib
from rq import Queue, SimpleWorker, get_current_job
from rq.registry import StartedJobRegistry

from campaigns import lease


def _left(conn: redis_lib.Redis, job_id: str) -> float:
    key = StartedJobRegistry("leases", connection=conn).key
    (score,) = [s for m, s in conn.zrange(key, 0, -1, withscores=True) if m.decode().startswith(job_id + ":")]
    return float(score) - time.time()


def probe(renewing: bool) -> list[float]:
    """A job: its lease's time left at its start, and after a while (renewed or not)."""
    job = get_current_job()
    assert job is not None
    conn = job.connection
    seen = [_left(conn, job.id)]
    if renewing:
        with lease.renewed(conn, job, every_s=0.05):
            time.sleep(0.3)
            seen.append(_left(conn, job.id))
    else:
        time.sleep(0.3)
        seen.append(_left(conn, job.id))
    return seen


def test_a_simple_workers_job_lease_is_renewed_short_while_it_runs(redis: redis_lib.Redis) -> None:
    queue = Queue("leases", connection=redis)
    plain = queue.enqueue(probe, False, job_timeout=3600)
    renewed = queue.enqueue(probe, True, job_timeout=3600)
    SimpleWorker([queue], connection=redis).work(burst=True)
    # RQ's own lease for a simple worker: the whole timeout and a minute, never renewed.
    assert all(3600 < left <= 3660 for left in plain.return_value())
    # Renewed: a worker killed outright would lose the batch within 90 s.
    before, during = renewed.return_value()
    assert 3600 < before <= 3660 and 89 < during <= 90
    # Once the job is over, a late renewal puts nothing back.
    assert lease.renew(redis, renewed) == []
    assert not redis.zrange(StartedJobRegistry("leases", connection=redis).key, 0, -1)


def test_without_a_job_nothing_is_renewed(redis: redis_lib.Redis) -> None:
    with lease.renewed(redis, None):
        pass


def test_a_lapsed_lease_of_a_dead_run_is_not_revived(redis: redis_lib.Redis) -> None:
    """The batch re-queued after its worker was killed runs under the same job id as the dead run."""
    queue = Queue("leases", connection=redis)
    job = queue.enqueue(probe, False, job_timeout=3600)
    key = StartedJobRegistry("leases", connection=redis).key
    redis.zadd(key, {f"{job.id}:dead": time.time() - 5, f"{job.id}:live": time.time() + 3600})
    mine = lease.renew(redis, job)
    assert mine == [f"{job.id}:live".encode()]
    scores = dict(redis.zrange(key, 0, -1, withscores=True))
    assert scores[f"{job.id}:dead".encode()] < time.time() < scores[f"{job.id}:live".encode()] <= time.time() + 90
    # Redis away longer than the lease: this run's own entry lapsed; it is renewed all the same.
    redis.zadd(key, {f"{job.id}:live": time.time() - 1})
    assert lease.renew(redis, job, mine=mine) == mine
    assert redis.zscore(key, f"{job.id}:live") > time.time() + 80  # type: ignore[operator]
    assert redis.zscore(key, f"{job.id}:dead") < time.time()  # type: ignore[operator]
