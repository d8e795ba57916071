"""Redis lost mid-campaign — restarted empty, then flushed: the campaign finishes, nobody twice, nobody dropped.

The suite serves a redis-server of its own (no persistence, so a restart loses
everything: queued jobs, the pace schedules, the not-yet-called lists). 2,000 voters at
1,000/s through two ``python worker.py`` processes and the fake Twilio; after a share of
the sends, Redis is shut down and started again empty (the workers lose their connection
and are started again, as a supervisor would), and later the database is flushed under
the running workers. The database is the truth: the scheduler's reconcile queues the
batches whose jobs vanished; rows whose send may have gone are ``unknown``, never resent,
and their status callbacks settle them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from bot.db import utcnow
from campaigns import operations
from tests.fakes.twilio_http import free_port
from tests.faults.conftest import LATER, Rig, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("backend", ["postgresql"], indirect=True)]
VOTERS = 2_000
WORKERS = 2


class PrivateRedis:
    """A redis-server of this suite's own, which it may stop, start and flush."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (scripts/system-deps.sh installs it)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, "the private redis-server to answer")

    def restart_empty(self) -> None:
        """Shut it down (nothing saved) and start it again: everything it held is gone."""
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)
        time.sleep(0.5)  # the workers notice it is gone
        self.start()

    def flush(self) -> None:
        redis_lib.Redis.from_url(self.url).flushall()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def _answers(self) -> bool:
        try:
            return bool(redis_lib.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis_lib.RedisError:
            return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(private_redis: PrivateRedis) -> str:
    """The rig's processes use the suite's own Redis."""
    return private_redis.url


def restart_workers(rig: Rig) -> None:
    """A supervisor's work: workers that lost Redis are replaced (dead or alive)."""
    rig.procs.kill_workers()
    rig.reconcile(now=utcnow() + LATER)
    rig.procs.start_workers(WORKERS)


def test_redis_restarted_empty_then_flushed_mid_campaign(rig: Rig, private_redis: PrivateRedis) -> None:
    phones = rig.voters(VOTERS)
    campaign_id = rig.campaign(pace=1000, batch_size=500)
    plan = operations.launch(rig.rt, campaign_id)
    assert plan.pending == VOTERS
    rig.procs.start_workers(WORKERS)

    wait_for(lambda: len(rig.fake.requests) >= VOTERS // 4, 120, "a quarter of the sends")
    private_redis.restart_empty()
    restart_workers(rig)

    wait_for(lambda: len(rig.fake.requests) >= VOTERS * 3 // 5, 120, "three fifths of the sends")
    private_redis.flush()  # under the running workers: their queues, paces and lists vanish
    time.sleep(1)
    restart_workers(rig)

    rig.finish(campaign_id)
    counts = rig.check_every_voter_reached_once(campaign_id, phones)
    print(
        f"\nRedis suite: {counts['voters']} voters, {counts['calls']} provider calls (none twice), "
        f"{rig.unknown} sends made unknown by the reconciler and settled by callbacks, {rig.released} "
        f"claimed-but-unsent rows released and sent once, {counts['uncertain']} unknown without a call"
    )
    assert rig.statuses(campaign_id) == {"delivered": counts["calls"], "unknown": counts["uncertain"]} or (
        counts["uncertain"] == 0 and rig.statuses(campaign_id) == {"delivered": VOTERS}
    )
    # Losing Redis loses the not-yet-called lists: rows claimed at that moment count as possibly sent.
    assert counts["uncertain"] <= 2 * 96 * WORKERS
