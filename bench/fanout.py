"""Benchmark: launch a WhatsApp campaign to 1,000,000 voters (plan every recipient, queue every batch).

Run:  .venv/bin/python -m bench.fanout [--rows 1000000] [--pg URL] [--skip-sqlite] [--skip-pg]

Builds the world of ``bench/campaign_world.py`` (a million voters with a share for every
skip code), then times ``campaigns.operations.launch`` end to end: the launch checks,
the planner's one INSERT ... SELECT, its summary, the commit and ``enqueue_many`` of
every batch job into RQ on Redis db 10. The baseline, in the same run and on the same
table: a bare ``INSERT INTO campaign_recipients ... SELECT <constants> FROM contacts``
(no skip checks, no batch numbers). Target (issue 5): launch <= 20 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

OUT = Path(__file__).resolve().parent / "out"
TARGET_S = 20.0
PARTS = (
    "launch checks (readiness, audience count)",
    "plan (INSERT ... SELECT + summary)",
    "sql: the planner's INSERT ... SELECT",
    "  of which PostgreSQL backend CPU",
    "sql: recipient counts (summary, checks)",
    "enqueue_many of every batch job",
)


def baseline(rt: Any, campaign_id: int, now: Any) -> tuple[float, float | None]:
    """Seconds (and PostgreSQL backend CPU seconds) of a bare INSERT ... SELECT of constants for
    every contact (then removed again)."""
    db = rt.db
    bare = text(
        "INSERT INTO campaign_recipients (campaign_id, contact_id, batch, channel, status, skip_code, attempts, "
        "queued_at) SELECT :campaign, id, 0, 'whatsapp', 'pending', NULL, 0, :now FROM contacts"
    )
    when = now if db.dialect == "postgresql" else now.strftime("%Y-%m-%d %H:%M:%S.%f")
    start = time.perf_counter()
    with db.engine.begin() as conn:
        cpu = backend_cpu(conn)
        conn.execute(bare, {"campaign": campaign_id, "now": when})
        cpu = None if cpu is None else backend_cpu(conn) - cpu  # type: ignore[operator]
    seconds = time.perf_counter() - start
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM campaign_recipients WHERE campaign_id = :c"), {"c": campaign_id})
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE campaign_recipients")
    return seconds, cpu


class Stopwatch:
    """Seconds spent in wrapped functions and in SQL statements, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        setattr(owner, name, timed)

    def watch_sql(self, engine: Any) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            conn.info["bench_t"] = time.perf_counter()
            conn.info["bench_cpu"] = backend_cpu(conn)

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            label = None
            if "INSERT INTO campaign_recipients" in statement:
                label = PARTS[2]
                cpu = backend_cpu(conn)
                if cpu is not None and conn.info["bench_cpu"] is not None:
                    self.seconds[PARTS[3]] += cpu - conn.info["bench_cpu"]
            elif "campaign_recipients" in statement and statement.lstrip().startswith("SELECT"):
                label = PARTS[4]
            if label:
                self.seconds[label] += time.perf_counter() - conn.info.pop("bench_t")


def backend_cpu(conn: Any) -> float | None:
    """CPU seconds used so far by the PostgreSQL backend of ``conn`` (a local server), else None.

    Steadier than wall time on a shared machine: it does not count waiting for a core.
    """
    if conn.dialect.name != "postgresql":
        return None
    try:
        pid = conn.connection.dbapi_connection.info.backend_pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, AttributeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(url: str, schema: str | None, rows: int) -> dict[str, Any]:
    """Build the world in a fresh database, time the baseline, then time the launch."""
    from rq import Queue

    from bench import campaign_world
    from bench.dbsetup import fresh_database
    from campaigns import operations, planner

    db = fresh_database(url, schema)
    rt = campaign_world.runtime(str(db.engine.url.render_as_string(hide_password=False)))
    db.dispose()
    rt.redis.flushdb()  # db 10 is this benchmark's own
    start = time.perf_counter()
    campaign_world.seed(rt)
    ids = campaign_world.build(rt, rows)
    campaign_id = campaign_world.booth_campaign(rt)
    result: dict[str, Any] = {"build_s": time.perf_counter() - start}
    result["baseline_s"], result["baseline_cpu_s"] = baseline(rt, ids["baseline"], campaign_world.NOW)

    watch = Stopwatch()
    watch.wrap(operations, "_check_launchable", PARTS[0])
    watch.wrap(planner, "plan", PARTS[1])
    watch.wrap(planner, "enqueue", PARTS[5])
    watch.watch_sql(rt.db.engine)
    start = time.perf_counter()
    plan = operations.launch(rt, campaign_id, now=campaign_world.NOW)
    result["launch_s"] = time.perf_counter() - start
    result["parts_s"] = dict(watch.seconds)
    result["planned"] = plan.total
    result["pending"] = plan.pending
    result["skipped"] = plan.skipped
    result["batches"] = len(plan.batches)
    result["jobs_in_queue"] = Queue(planner.SEND_QUEUE, connection=rt.redis).count
    rt.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    from bench.dbsetup import add_pg_option

    add_pg_option(parser)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("URL", "SCHEMA", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        url, schema, n = args.one
        print(json.dumps(run_one(url, schema if schema != "-" else None, int(n))))
        return 0

    OUT.mkdir(exist_ok=True)
    targets = []
    if not args.skip_pg:
        targets.append(("postgresql", args.pg, "bench_fanout"))
    if not args.skip_sqlite:
        targets.append(("sqlite", f"sqlite:///{OUT / 'fanout.db'}", "-"))
    ok = True
    for name, url, schema in targets:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.fanout", "--one", url, schema, str(args.rows)],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        if proc.returncode != 0:
            print(f"{name}: FAILED\n{proc.stderr}")
            ok = False
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        launch, base = r["launch_s"], r["baseline_s"]
        print(f"{name}: world of {args.rows:,} voters built in {r['build_s']:.1f} s")
        cpu = f" (PostgreSQL backend CPU {r['baseline_cpu_s']:.2f} s)" if r["baseline_cpu_s"] is not None else ""
        print(f"  baseline: bare INSERT ... SELECT of {args.rows:,} constant rows: {base:.2f} s{cpu}")
        verdict = ""
        if name == "postgresql":
            met = launch <= TARGET_S
            ok = ok and met
            verdict = f"; target <= {TARGET_S:.0f} s: {'met' if met else 'NOT MET'}"
        print(
            f"  launch: {r['planned']:,} recipients planned ({r['pending']:,} pending), "
            f"{r['batches']:,} batch jobs queued, in {launch:.2f} s = {r['planned'] / launch:,.0f} recipients/s "
            f"({launch / base:.2f}x baseline{verdict})"
        )
        for part in PARTS:
            if part in r["parts_s"]:
                print(f"    {part}: {r['parts_s'][part]:.2f} s")
        print(f"  skipped: {json.dumps(r['skipped'], sort_keys=True)}")
        print(f"  jobs in the RQ queue afterwards: {r['jobs_in_queue']:,}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
