"""Background processes: RQ workers on the canvass queues, and the scheduler.

    python worker.py [--burst] [--fork]       # an RQ worker (canvass worker)
    python worker.py scheduler                # the periodic scheduler (canvass scheduler)

Configuration is read once here, from the environment and ``.env``, as in the web app.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dotenv import dotenv_values
from rq import Queue, SimpleWorker, Worker
from rq.registry import clean_registries
from sqlalchemy.orm import configure_mappers

from bot import logs, runtime
from bot import queues as queue_roles
from bot.queues import QUEUE_NAMES, SCHEDULER_HEARTBEAT
from bot.settings import Settings, SettingsError

log = logging.getLogger("canvass.worker")
MAINTENANCE_S = 60


def read_settings() -> Settings:
    """Read settings: the environment over ``.env``."""
    env = {k: v for k, v in dotenv_values(Path.cwd() / ".env").items() if v is not None}
    env.update(os.environ)
    return Settings.from_env(env)


def load_runtime() -> runtime.Runtime:
    """Read settings and install the process's runtime."""
    return install(runtime.Runtime.from_settings(read_settings()))


def install(rt: runtime.Runtime) -> runtime.Runtime:
    """Make ``rt`` the runtime of this process's jobs."""
    runtime.install(rt)
    # A job in a forked work-horse (--fork) must not share the parent's pooled connections.
    os.register_at_fork(after_in_child=lambda: rt.db.engine.dispose(close=False))
    return rt


# Imported once by the worker itself, before its first job: the first batch job does not
# pay for them, and with --fork every work-horse inherits them instead of importing them
# again (the twilio SDK's REST modules alone took ~0.4 s of every forked batch job).
PRELOAD = (
    "bot.tasks",
    "campaigns.tasks",
    "campaigns.operations",
    "bot.channels.twilio_sms",
    "twilio.rest.api.v2010.account",
    "twilio.rest.content",
    "concurrent.futures.thread",
)


def preload() -> None:
    """Import what jobs use, and set up SQLAlchemy's mappers, before the first job (or fork)."""
    for name in PRELOAD:
        importlib.import_module(name)
    # SQLAlchemy configures every mapper at the first query: ~25 ms of each batch job's
    # CPU when each forked work-horse did it again.
    configure_mappers()


def queue_names(text: str | None) -> tuple[str, ...]:
    """The queues named in ``text`` (comma-separated), in priority order; all by default."""
    if not text:
        return QUEUE_NAMES
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in QUEUE_NAMES]
    if unknown or not names:
        known = ", ".join(QUEUE_NAMES)
        raise SettingsError("--queues", f"unknown queue(s) {', '.join(unknown) or repr(text)}; known: {known}")
    return tuple(n for n in QUEUE_NAMES if n in names)


def run_worker(
    *,
    burst: bool = False,
    fork: bool = False,
    rt: runtime.Runtime | None = None,
    queues: tuple[str, ...] = QUEUE_NAMES,
) -> int:
    """Work ``queues`` in priority order until SIGTERM (or, with ``burst``, until empty).

    Jobs run in the worker's own process, one after the other (``SimpleWorker``): its
    database and Redis connections, statement caches and twilio client serve every job.
    With ``fork``, each job runs in a forked work-horse instead (RQ's default), which
    isolates a job that crashes the interpreter at the price of all that per job — about
    0.6 ms of the machine's CPU a message of a batch (``bench/RESULTS.md``). A job's
    timeout holds either way (SIGALRM in the process running it).

    A worker given only ``high`` is a reply worker: a batch job holds a worker for
    seconds, so replies from flows wait behind it unless some worker takes nothing else.
    """
    rt = install(rt) if rt else load_runtime()
    from campaigns.planner import check_job_timeouts

    try:
        # A send must never outlive the batch job that makes it (RQ would cut it off).
        check_job_timeouts(rt.settings.twilio_timeout_s)
    except ValueError as exc:
        raise SettingsError("TWILIO_TIMEOUT_S", str(exc)) from None
    preload()
    names = queues
    queue_roles.serve(names)  # a batch job hands this worker over to a waiting reply
    rq_queues = [Queue(name, connection=rt.redis) for name in names]
    worker_class = Worker if fork else SimpleWorker
    name = f"canvass-{socket.gethostname()}-{os.getpid()}"
    # RQ's scheduler (retries, jobs waiting for a send window) runs in one worker at a time,
    # under a lock of 61 s; another worker takes over at its maintenance round, every
    # 10 minutes by default. Every minute, so that a worker's crash stalls retries briefly.
    worker = worker_class(rq_queues, connection=rt.redis, name=name, maintenance_interval=MAINTENANCE_S)
    log.info(
        "worker %s on queues %s (%s, %s)",
        name,
        ", ".join(names),
        "burst" if burst else "until stopped",
        "a forked work-horse per job" if fork else "jobs in this process",
    )
    # RQ turns SIGTERM/SIGINT into a warm shutdown: the job at hand finishes first.
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    log.info("worker %s stopped", name)
    return 0


@dataclasses.dataclass
class Periodic:
    """A task the scheduler runs every ``every`` seconds."""

    name: str
    every: float
    run: Callable[[runtime.Runtime], None]


def _heartbeat(rt: runtime.Runtime) -> None:
    rt.redis.set(SCHEDULER_HEARTBEAT, str(time.time()), ex=60)


def _clean_queues(rt: runtime.Runtime) -> None:
    # Jobs of workers that died are moved from "started" to "failed", so nothing
    # waits forever on a job no one runs.
    for name in QUEUE_NAMES:
        clean_registries(Queue(name, connection=rt.redis))


def _fire_timeouts(rt: runtime.Runtime) -> None:
    # Timers live in the database, not in Redis, so they fire even after a restart.
    from bot.conversations import fire_due_timeouts

    fired = fire_due_timeouts(rt)
    if fired:
        log.info("scheduler: %d session timeout(s) fired", fired)


def _sweep_inbound(rt: runtime.Runtime) -> None:
    # Stored messages are the truth: any whose drain job was lost (Redis flushed, a
    # worker killed) are routed here.
    from bot.conversations import sweep_inbound

    routed = sweep_inbound(rt)
    if routed:
        log.info("scheduler: %d stored inbound message(s) routed by the sweep", routed)


def _purge_inbound(rt: runtime.Runtime) -> None:
    # Routed rows are only a record of the webhook (the messages table has them); a
    # day covers Twilio's retries of a delivery.
    from bot.inbox import inbox_for

    purged = inbox_for(rt).purge(dt.timedelta(days=1))
    if purged:
        log.info("scheduler: purged %d routed inbound queue row(s)", purged)


def _purge_bodies(rt: runtime.Runtime) -> None:
    from bot.retention import purge_bodies

    purged = purge_bodies(rt.db, rt.settings.retention_days)
    if purged:
        log.info("scheduler: purged the bodies of %d message(s) older than %d days", purged, rt.settings.retention_days)


def _launch_due(rt: runtime.Runtime) -> None:
    from campaigns.reconciler import launch_due

    launch_due(rt)


def _reconcile(rt: runtime.Runtime) -> None:
    # The database is the truth: batches whose job vanished are queued again.
    from campaigns.reconciler import reconcile

    done = reconcile(rt)
    if any(done.values()):
        log.info("scheduler: campaigns reconciled: %s", done)


def _settle_call_steps(rt: runtime.Runtime) -> None:
    # A call's keypad steps are applied when it ends; these are the calls whose end never came.
    from ivr.steplog import STALE_AFTER, settle_stale

    applied = settle_stale(rt.db.session, STALE_AFTER, dt.datetime.now(dt.UTC))
    if applied:
        log.info("scheduler: applied %d stored keypad step(s) of calls that never reported their end", applied)


def _finish_calls(rt: runtime.Runtime) -> None:
    # The status webhook records a call's end; its flow ends here (stored steps applied first).
    from ivr.endings import finish_calls

    finished = finish_calls(rt)
    if finished:
        log.debug("scheduler: ended the flows of %d finished call(s)", finished)


PERIODIC = [
    Periodic("heartbeat", 5, _heartbeat),
    Periodic("clean-queues", 60, _clean_queues),
    Periodic("session-timeouts", 5, _fire_timeouts),
    Periodic("inbound-sweep", 5, _sweep_inbound),
    Periodic("inbound-purge", 3600, _purge_inbound),
    Periodic("retention", 3600, _purge_bodies),
    Periodic("campaign-schedule", 5, _launch_due),
    Periodic("campaign-reconcile", 60, _reconcile),
    Periodic("call-steps", 60, _settle_call_steps),
    Periodic("call-ends", 0.5, _finish_calls),
]


def run_scheduler(*, rt: runtime.Runtime | None = None, once: bool = False) -> int:
    """Run the periodic tasks until SIGTERM or SIGINT."""
    rt = install(rt) if rt else load_runtime()
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        log.info("scheduler: %s received, stopping", signal.Signals(signum).name)
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started: %s", ", ".join(f"{p.name} every {p.every:g}s" for p in PERIODIC))
    due = dict.fromkeys((task.name for task in PERIODIC), 0.0)
    while not stopping:
        now = time.monotonic()
        for task in PERIODIC:
            if now >= due[task.name]:
                due[task.name] = now + task.every
                try:
                    task.run(rt)
                except Exception:
                    # One failing task must not stop the others; it is retried next round.
                    log.exception("scheduler: %s failed", task.name)
        if once:
            break
        time.sleep(0.5)
    log.info("scheduler stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python worker.py``."""
    parser = argparse.ArgumentParser(prog="worker.py", description=__doc__.split("\n")[0])
    parser.add_argument("role", nargs="?", choices=("worker", "scheduler"), default="worker")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--fork", action="store_true", help="run each job in a forked work-horse (RQ's default)")
    # Jobs run in the worker's process by default now; --simple, which asked for that, still works.
    parser.add_argument("--simple", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--queues", help=f"comma-separated queues (default: all, {','.join(QUEUE_NAMES)}); 'high': a reply worker"
    )
    args = parser.parse_args(argv)
    try:
        settings = read_settings()
        # One line per event, as CANVASS_LOG_FORMAT says; the twilio SDK's request lines
        # (eleven per send, at INFO) are kept out (bot.logs.QUIET).
        logs.configure(settings.log_format)
        rt = runtime.Runtime.from_settings(settings)
        if args.role == "scheduler":
            return run_scheduler(rt=rt)
        return run_worker(burst=args.burst, fork=args.fork and not args.simple, queues=queue_names(args.queues), rt=rt)
    except SettingsError as exc:
        print(f"worker.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
