"""The worker and the processes `make run` starts, as real processes on real Redis."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import func, select

from bot.models import Contact
from bot.queues import QUEUE_NAMES
from bot.settings import SettingsError
from web.context import runtime

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_runs_a_queued_import(app, redis, tmp_path: Path) -> None:
    import worker

    path = tmp_path / "v.csv"
    path.write_text("phone,ward\n9876543210,1\n9876543211,2\nbad,3\n")
    queue = Queue("default", connection=redis)
    job = queue.enqueue("bot.tasks.import_contacts", str(path), ["source=job"], job_id="import-test-1")
    with app.app_context():
        assert worker.run_worker(burst=True, rt=runtime()) == 0
    job.refresh()
    assert job.get_status() == "finished", job.exc_info
    assert job.return_value()["imported"] == 2
    assert job.return_value()["rejected"] == 1
    assert job.meta["progress"] == 1.0
    with app.extensions["canvass"].db.session() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 2


def test_worker_takes_high_priority_first(app, redis) -> None:
    import worker

    order_key = "canvass:test:order"
    Queue("default", connection=redis).enqueue("tests.jobs.record", order_key, "default")
    Queue("sends", connection=redis).enqueue("tests.jobs.record", order_key, "sends")
    Queue("high", connection=redis).enqueue("tests.jobs.record", order_key, "high")
    with app.app_context():
        worker.run_worker(burst=True, rt=runtime())
    assert [v.decode() for v in redis.lrange(order_key, 0, -1)] == ["high", "sends", "default"]
    assert QUEUE_NAMES == ("high", "sends", "calls", "default")


def test_a_reply_worker_takes_only_the_high_queue(app, redis) -> None:
    import worker

    order_key = "canvass:test:order"
    Queue("sends", connection=redis).enqueue("tests.jobs.record", order_key, "sends")
    Queue("high", connection=redis).enqueue("tests.jobs.record", order_key, "high")
    with app.app_context():
        worker.run_worker(burst=True, rt=runtime(), queues=worker.queue_names("high"))
    assert [v.decode() for v in redis.lrange(order_key, 0, -1)] == ["high"]  # the batch waits for others
    assert worker.queue_names("default, high") == ("high", "default")
    with pytest.raises(SettingsError, match="unknown queue"):
        worker.queue_names("replies")


@pytest.mark.slow
def test_worker_process_finishes_its_job_on_sigterm(settings_env, redis, tmp_path: Path) -> None:
    env = {**os.environ, **settings_env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        job = Queue("default", connection=redis).enqueue("tests.jobs.slow_write", "canvass:test:slow", 2.0)
        wait_for(lambda: job.get_status(refresh=True) == "started", what="job start")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    # Warm shutdown: the running job completed before the worker left.
    assert job.get_status(refresh=True) == "finished"
    assert redis.get("canvass:test:slow") == b"done"
    assert "stopped" in out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.slow
def test_up_serves_login_and_stops_everything_on_ctrl_c(cli, settings_env, redis, tmp_path: Path) -> None:
    assert cli("db", "upgrade").exit_code == 0
    port = free_port()
    env = {**os.environ, **settings_env, "PYTHONPATH": str(ROOT)}
    canvass = Path(sys.executable).with_name("canvass")
    proc = subprocess.Popen(
        [canvass, "up", "--port", str(port), "--web-workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: fetch(f"http://127.0.0.1:{port}/login")[0] == 200, timeout=60, what="login page")
        status, body = fetch(f"http://127.0.0.1:{port}/login")
        assert "Sign in to canvass" in body
        wait_for(
            lambda: '"scheduler":"seen' in fetch(f"http://127.0.0.1:{port}/healthz")[1].replace(" ", ""),
            what="scheduler heartbeat",
        )
        status, body = fetch(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and '"redis":"ok"' in body.replace(" ", "")
        wait_for(lambda: redis.smembers("rq:workers"), what="worker registration")
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert "canvass stopped" in out
    assert fetch(f"http://127.0.0.1:{port}/login")[0] == 0
    wait_for(lambda: not redis.smembers("rq:workers"), timeout=10, what="worker deregistration")


def test_canvass_worker_command_runs_the_queues(app, cli, redis) -> None:
    Queue("high", connection=redis).enqueue("tests.jobs.record", "canvass:test:cli", "ran")
    # --simple (jobs in the worker's process) is the default now; scripts that ask for it still work.
    result = cli("worker", "--burst", "--simple")
    assert result.exit_code == 0, result.output
    assert redis.lrange("canvass:test:cli", 0, -1) == [b"ran"]


@pytest.mark.parametrize("fork", [False, True])
def test_jobs_run_in_the_worker_process_unless_forked(app, cli, redis, fork: bool) -> None:
    key = "canvass:test:pids"
    for _ in range(2):
        Queue("default", connection=redis).enqueue("tests.jobs.record_pid", key)
    result = cli("worker", "--burst", *(["--fork"] if fork else []))
    assert result.exit_code == 0, result.output
    pids = {int(p) for p in redis.lrange(key, 0, -1)}
    if fork:
        # A work-horse per job: neither job ran in this (the worker's) process.
        assert len(pids) == 2 and os.getpid() not in pids
    else:
        assert pids == {os.getpid()}
