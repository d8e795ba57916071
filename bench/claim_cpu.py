"""Benchmark: the CPU a claim and a settle cost per row — the batch job's main thread alone.

Run:  .venv/bin/python -m bench.claim_cpu [--voters 20000] [--chunk 48] [--profile out.prof]

A fresh PostgreSQL schema with ``--voters`` voters and the blast campaign of
``bench.dispatch``, launched (batch jobs queued, no worker). This process then claims the
rows a chunk at a time, batch after batch, exactly as a batch job does (``next_pending`` and ``claim`` in one
transaction), and settles each chunk as sent (``settle``, with made-up provider ids) — no
provider, no threads. Printed: this process's CPU per row for claiming and for settling,
and PostgreSQL's (every ``postgres`` process of the machine, so run it on a quiet one).
The figures are steadier than a whole send's, for comparing two versions of the code.
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import time

from sqlalchemy import text

from bench.dbsetup import add_pg_option, drop_schema
from bench.dispatch import HIGH_RATE
from bench.dispatch_world import World, recipient_counts
from bench.loopback import named_cpu_s
from bot.db import Database


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pg_option(parser)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--voters", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=48)
    parser.add_argument("--profile", help="write a cProfile (thread CPU time) of the claims and settles here")
    args = parser.parse_args()
    from bot.db import utcnow
    from bot.flowlibrary import FlowLibrary
    from campaigns import compliance, operations
    from campaigns.claims import Outcome, claim, next_pending
    from campaigns.fallback import step_for
    from campaigns.models import Campaign, Recipient
    from campaigns.settlement import settle

    schema = "bench_claim_cpu"
    world = World.create(args.pg, schema, args.redis, api_base="http://127.0.0.1:9", voters=args.voters, sender_rate=1)
    try:
        rt = world.rt
        campaign_id = world.campaign(HIGH_RATE)
        operations.launch(rt, campaign_id)
        batches = iter(sorted(b for b in recipient_counts(rt, campaign_id, Recipient.batch) if b is not None))
        batch = next(batches)
        with rt.db.session() as db:
            campaign = db.get(Campaign, campaign_id)
            assert campaign is not None
            step = step_for(db, campaign, batch)
            found = FlowLibrary(db).get(campaign.flow_name or "", campaign.flow_version)
            policy = compliance.policy_for(rt.settings, campaign, db)
            db.expunge_all()
        assert step is not None and found is not None
        flow = found[0]
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        claim_s = settle_s = 0.0
        rows = warm = 0
        pg0 = named_cpu_s("postgres")
        wall0 = time.perf_counter()
        n = 0
        while True:
            n += 1
            t0 = time.thread_time()
            if profiler:
                profiler.enable()
            with rt.db.session(write=True) as db:
                ids = next_pending(db, campaign_id, batch, args.chunk, set())
                while not ids and (batch := next(batches, -1)) >= 0:
                    ids = next_pending(db, campaign_id, batch, args.chunk, set())
                if not ids:
                    break
                claimed, _ = claim(db, campaign, step, flow, ids, utcnow(), policy)
            t1 = time.thread_time()
            outcomes = [Outcome(c, "sent", provider_id=f"SM{c.message_id:032x}") for c in claimed]
            t2 = time.thread_time()
            with rt.db.session(write=True) as db:
                settle(db, outcomes, utcnow())
            t3 = time.thread_time()
            if profiler:
                profiler.disable()
            if n <= 5:  # warm-up: imports, statement caches, prepared statements
                warm += len(claimed)
                if n == 5:
                    _analyze(rt.db)
                pg0 = named_cpu_s("postgres")
                wall0 = time.perf_counter()
                if profiler:
                    profiler = cProfile.Profile(time.thread_time)
                continue
            claim_s += t1 - t0
            settle_s += t3 - t2
            rows += len(claimed)
        pg = named_cpu_s("postgres") - pg0
        wall = time.perf_counter() - wall0
        if profiler:
            profiler.dump_stats(args.profile)
        print(
            f"{rows:,} rows in chunks of {args.chunk} ({warm} warm-up rows not counted), {wall:.1f} s: "
            f"claim {claim_s * 1e3 / rows:.3f} ms CPU a row, settle {settle_s * 1e3 / rows:.3f}, "
            f"together {(claim_s + settle_s) * 1e3 / rows:.3f}; PostgreSQL {pg * 1e3 / rows:.3f} ms a row",
            flush=True,
        )
        _report_updates(rt.db)
    finally:
        world.close()
        drop_schema(args.pg, schema)
    return 0


def _report_updates(db: Database) -> None:
    """Per table written: rows updated, and how many of those were HOT (no index entry to add)."""
    stats = text(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
        "WHERE schemaname = current_schema() AND n_tup_ins + n_tup_upd > 0 ORDER BY relname"
    )
    db.engine.dispose()  # a closing backend reports its counts
    time.sleep(0.5)
    with db.engine.begin() as conn:
        for name, inserted, updated, hot in conn.execute(stats):
            share = f"{100 * hot / updated:.0f} % HOT" if updated else "-"
            print(f"  {name}: {inserted:,} inserted, {updated:,} updated ({share})", flush=True)


def _analyze(db: Database) -> None:
    """Statistics for the tables a claim reads, as a database in use has them.

    Fresh tables have none until autovacuum's next round (a minute or more): their
    plans would be a fresh schema's (sequential scans), not a running system's.
    """
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


if __name__ == "__main__":
    sys.exit(main())
