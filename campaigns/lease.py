"""A running batch job's lease in RQ's started registry, kept short and renewed while it runs.

The reconciler takes a batch whose job holds no live lease for lost (``reconciler._jobs_alive``)
and queues it again. RQ gives a job its lease when it starts: a forking worker's parent
renews it every ``job_monitoring_interval`` for that and a minute (about 90 s); a simple
worker (canvass's default) sets it once, for the job's whole timeout and a minute, and a
batch of a slow campaign can have a timeout of an hour. So a simple worker killed outright
left its batch stranded that long.

``renewed`` gives the job a lease of ``LEASE_S`` and renews it every ``EVERY_S`` from a
thread of its own while the job runs (a send waiting for its slot does not stop it). A
worker killed outright renews nothing: its lease runs out within ``LEASE_S``, whatever the
worker kind. The renewal only moves an entry that is there (``ZADD XX``): a job RQ has
already finished is never put back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from redis.exceptions import RedisError
from rq.job import Job
from rq.utils import as_text, parse_composite_key

log = logging.getLogger(__name__)

LEASE_S = 90
EVERY_S = 20.0


def renew(conn: Any, job: Job, lease_s: float = LEASE_S, mine: Sequence[bytes] | None = None) -> list[bytes]:
    """Set this run's started-registry entries to run out ``lease_s`` from now; return them.

    ``mine``: the entries found the first time (pass them back). Found the first time are
    the entries of the job's id still running: a dead run of the same job id (a batch
    re-queued after its worker was killed) keeps its lapsed entry until RQ's cleanup, and
    must not be revived. Passed back, this run's entry is renewed even if it lapsed while
    Redis was away.
    """
    key = job.started_job_registry.key
    now = time.time()
    if mine is None:
        mine = [m for m in conn.zrangebyscore(key, now, "+inf") if parse_composite_key(as_text(m))[0] == job.id]
    if mine:
        conn.zadd(key, dict.fromkeys(mine, now + lease_s), xx=True)
    return list(mine)


@contextlib.contextmanager
def renewed(conn: Any, job: Job | None, every_s: float = EVERY_S, lease_s: float = LEASE_S) -> Iterator[None]:
    """Keep ``job``'s lease at ``lease_s`` while the block runs (nothing without a job)."""
    if job is None:
        yield
        return
    done = threading.Event()

    mine: list[bytes] | None = None

    def loop() -> None:
        nonlocal mine
        while True:
            try:
                mine = renew(conn, job, lease_s, mine) or None
            except RedisError as exc:  # Redis away for a moment: the next round tries again
                log.warning("job %s: its lease could not be renewed: %s", job.id, exc)
            if done.wait(every_s):
                return

    thread = threading.Thread(target=loop, name=f"lease-{job.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(5)
