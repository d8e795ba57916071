"""Benchmark: the CPU a batch job spends per message, in this process (the cheap loop).

Run:  .venv/bin/python -m bench.dispatch_cpu [--voters 5000] [--profile out.prof]

A fresh PostgreSQL schema with ``--voters`` voters and the blast campaign of
``bench.dispatch`` (pace far above what the machine sends), launched (its batch jobs are
queued in Redis but no worker takes them); then this process runs the batches one after
the other with ``campaigns.dispatch.send_batch`` against the fake Twilio (a process of its
own), and prints the CPU this process spent per message (``time.process_time``: every
thread's) — the figure ``bench.dispatch`` reads from its workers, without forks, RQ and
the other worker. ``--profile`` writes a cProfile (thread CPU time) of the batches' main threads (claiming
and settling; the sending threads are not in it).
"""

from __future__ import annotations

import argparse
import cProfile
import resource
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from bench.dbsetup import add_pg_option, drop_schema
from bench.dispatch import HIGH_RATE
from bench.dispatch_world import ROOT, FakeProcess, World, recipient_counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pg_option(parser)
    parser.add_argument("--batch-size", type=int, help="recipients per batch job (default: the planner's)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--voters", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--profile", help="write a cProfile of the batches' main threads here")
    parser.add_argument(
        "--raw", type=int, default=0, help="first, this many raw messages.create calls in this process (96 threads)"
    )
    parser.add_argument("--yappi", help="write a yappi profile (CPU time, every thread; pstats format) here")
    parser.add_argument(
        "--worker", action="store_true", help="run the queued jobs with one real `worker.py --burst` instead"
    )
    parser.add_argument("--spy", help="with --worker: record the worker with py-spy (raw stacks) into this file")
    args = parser.parse_args()
    from campaigns import operations
    from campaigns.dispatch import send_batch
    from campaigns.models import Campaign, Recipient

    fake = FakeProcess(latency_s=args.latency)
    if args.raw:
        _raw_in_process(fake.url, args.raw)
    schema = "bench_dispatch_cpu"
    world = World.create(args.pg, schema, args.redis, api_base=fake.url, voters=args.voters, sender_rate=HIGH_RATE)
    try:
        campaign_id = world.campaign(HIGH_RATE, args.batch_size)
        operations.launch(world.rt, campaign_id)
        sizes = recipient_counts(world.rt, campaign_id, Recipient.batch)
        batches = sorted(sizes)
        sent = sum(sizes[b] for b in batches[1:])
        if args.worker:
            return _burst_worker(world, sizes, args.spy)
        # The first batch warms up (imports, connections, statement caches): not counted.
        rt = world.rt
        send_batch(rt.db, rt.settings, rt.redis, campaign_id, batches[0])
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        if args.yappi:
            import yappi

            yappi.set_clock_type("cpu")
            yappi.start()
        cpu0, main0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for batch in batches[1:]:
            send_batch(rt.db, rt.settings, rt.redis, campaign_id, batch)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        if args.yappi:
            yappi.stop()
            yappi.get_func_stats().save(args.yappi, type="pstat")
        cpu, main, wall = time.process_time() - cpu0, time.thread_time() - main0, time.perf_counter() - wall0
        statuses = recipient_counts(rt, campaign_id, Recipient.status)
        with rt.db.session() as db:
            status = db.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        print(
            f"{args.voters:,} voters, {len(batches)} batches ({len(batches) - 1} timed, {sent:,} messages): "
            f"{cpu * 1000 / sent:.3f} ms CPU a message ({main * 1000 / sent:.3f} in the main thread: claims, "
            f"settling), {sent / wall:.0f} msg/s in one process; "
            f"statuses {statuses}; campaign {status}",
            flush=True,
        )
    finally:
        world.close()
        fake.stop()
        drop_schema(args.pg, schema)
    return 0


def _raw_in_process(api_base: str, count: int) -> None:
    """The raw loop of ``bench.dispatch`` in this process (MAX_IN_FLIGHT threads): its CPU a message."""
    import queue
    import threading

    from bench.dispatch import _raw_process
    from campaigns.dispatch import MAX_IN_FLIGHT

    out: queue.Queue[int] = queue.Queue()
    _raw_process(api_base, 60_000_000, 500, MAX_IN_FLIGHT, out)  # type: ignore[arg-type]  # warm-up
    cpu0, wall0 = time.process_time(), time.perf_counter()
    _raw_process(api_base, 61_000_000, count, MAX_IN_FLIGHT, out)  # type: ignore[arg-type]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"raw loop in this process, {MAX_IN_FLIGHT} threads, {count:,} messages: {cpu * 1000 / count:.3f} ms CPU "
        f"a message, {count / wall:.0f} msg/s ({threading.active_count()} threads alive after)",
        flush=True,
    )


def _burst_worker(world: World, sizes: dict[int | None, int], spy: str | None) -> int:
    """Run every queued batch job with one ``python worker.py --burst``; print its CPU a message."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "worker.py", "--burst", "--simple"]
    if spy:
        py_spy = str(Path(sys.executable).parent / "py-spy")
        command = [
            py_spy,
            "record",
            "--subprocesses",
            "--nonblocking",
            "-r",
            "250",
            "-f",
            "raw",
            "-o",
            spy,
            "--",
            *command,
        ]
    subprocess.run(command, cwd=ROOT, env=world.env, check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sent = sum(sizes.values())
    print(
        f"{sent:,} messages in {len(sizes)} batch jobs by one `worker.py --burst` (its start included): "
        f"{cpu * 1000 / sent:.3f} ms CPU a message, {sent / wall:.0f} msg/s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
