"""Benchmark: the funnel CSV export of a campaign with 1,000,000 recipients.

Run:  .venv/bin/python -m bench.export [--rows 1000000] [--pg URL] [--reuse]

Builds the world of ``bench/campaign_world.py``, launches its campaign (untimed), then
plays the sends in bulk SQL: 95 % of the pending voters were sent (a flow session each,
parked at ``knows``), 5 % failed; of the voters sent, 30 % replied with 2 funnel steps
and 2 answers, and half of those finished the flow; 1 % of answers look like a formula.
Then, each in a child process of its own, so that its peak RSS is the export's alone:

    export     campaigns.exporters.REGISTRY["csv"] writing the CSV to a file
    baselines  the same rows and columns straight from PostgreSQL: COPY (SELECT ...) TO
               STDOUT, and a plain psycopg server-side cursor iterating that SELECT and
               csv-writing each row

Target (issue 5): >= 100,000 rows/s with a peak RSS <= 200 MB, on PostgreSQL.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

OUT = Path(__file__).resolve().parent / "out"
TARGET_ROWS_S = 100_000
TARGET_RSS_MB = 200

# Times of the played sends (one per column: they only have to be there).
TIMES = {
    "queued": "2026-11-29 06:00:00+00",
    "sent": "2026-11-29 06:00:05+00",
    "delivered": "2026-11-29 06:00:09+00",
    "read": "2026-11-29 06:03:41+00",
    "replied": "2026-11-29 06:04:12+00",
    "step1": "2026-11-29 06:04:12+00",
    "step2": "2026-11-29 06:05:30+00",
    "ended": "2026-11-29 06:05:31+00",
}


def play_sends(rt: Any, campaign_id: int) -> dict[str, int]:
    """Mark the launched campaign's pending voters sent (with sessions, funnel steps, answers); PostgreSQL."""
    db = rt.db
    t = {k: f"timestamptz '{v}'" for k, v in TIMES.items()}
    sent = "r.campaign_id = :c AND r.status = 'pending' AND r.contact_id % 20 <> 0"
    replied = "r.contact_id % 10 < 3"
    statements = [
        # One session per voter sent, parked at the template's question; ids = recipient ids.
        f"""INSERT INTO flow_sessions (id, contact_id, flow_name, flow_version, channel, campaign_id, status,
                waiting_for, state, started_at, updated_at, replied_at, ended_at, end_reason)
            SELECT r.id, r.contact_id, 'booth_locator', 1, 'whatsapp', r.campaign_id,
                CASE WHEN r.contact_id % 10 < 2 THEN 'ended' ELSE 'waiting' END,
                CASE WHEN r.contact_id % 10 < 2 THEN NULL ELSE 'ask' END, '{{}}'::json, {t["sent"]}, {t["sent"]},
                CASE WHEN {replied} THEN {t["replied"]} END,
                CASE WHEN r.contact_id % 10 < 2 THEN {t["ended"]} END,
                CASE WHEN r.contact_id % 10 < 2 THEN 'completed' END
            FROM campaign_recipients r WHERE {sent}""",
        f"""INSERT INTO funnel_events (session_id, contact_id, flow_name, step, reached_at)
            SELECT r.id, r.contact_id, 'booth_locator', s.step, s.at FROM campaign_recipients r
            CROSS JOIN (SELECT 'answered' AS step, {t["step1"]} AS at
                        UNION ALL SELECT 'epic_given', {t["step2"]}) s
            WHERE {sent} AND {replied}""",
        f"""INSERT INTO answers (session_id, contact_id, flow_name, name, value, answered_at)
            SELECT r.id, r.contact_id, 'booth_locator', a.name,
                CASE WHEN a.name = 'epic' AND r.contact_id % 100 = 10 THEN '"=SUM(1+1)"'::json ELSE a.value END,
                a.at
            FROM campaign_recipients r
            CROSS JOIN (SELECT 'knows_booth' AS name, '"2"'::json AS value, {t["step1"]} AS at
                        UNION ALL SELECT 'epic', '"ABC1234567"'::json, {t["step2"]}) a
            WHERE {sent} AND {replied}""",
        f"""UPDATE campaign_recipients SET status = 'failed', attempts = 1, error_code = '63016',
                error_msg = 'Failed to send freeform message because you are outside the allowed window',
                sending_at = {t["sent"]}, failed_at = {t["sent"]}
            WHERE campaign_id = :c AND status = 'pending' AND contact_id % 20 = 0""",
        f"""UPDATE campaign_recipients SET attempts = 1, session_id = id,
                status = CASE WHEN contact_id % 3 = 0 THEN 'delivered' ELSE 'read' END,
                sending_at = {t["sent"]}, sent_at = {t["sent"]}, delivered_at = {t["delivered"]},
                read_at = CASE WHEN contact_id % 3 = 0 THEN NULL ELSE {t["read"]} END
            WHERE campaign_id = :c AND status = 'pending'""",
    ]
    with db.engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql), {"c": campaign_id})
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence('flow_sessions', 'id'), (SELECT max(id) FROM flow_sessions))")
        )
        counts = {
            name: conn.execute(text(sql), {"c": campaign_id}).scalar_one()
            for name, sql in {
                "recipients": "SELECT count(*) FROM campaign_recipients WHERE campaign_id = :c",
                "sessions": "SELECT count(*) FROM flow_sessions WHERE campaign_id = :c",
                "funnel_events": "SELECT count(*) FROM funnel_events",
                "answers": "SELECT count(*) FROM answers",
            }.items()
        }
    from bench.campaign_world import analyze

    analyze(db)
    return counts


# The export's rows and columns in one SELECT (the baselines run it): funnel steps and
# answers as columns, times as ISO-8601 UTC with Z.
BASELINE_SQL = """
SELECT r.contact_id, c.phone, c.name, r.channel, r.attempts, r.status, coalesce(r.error_code, r.skip_code),
    r.error_msg, {iso_q}, {iso_s}, {iso_d}, {iso_r}, {iso_replied},
    CASE WHEN s.end_reason = 'completed' THEN {iso_ended} END,
    {steps}, {answers}
FROM campaign_recipients r
JOIN contacts c ON c.id = r.contact_id
LEFT JOIN flow_sessions s ON s.id = r.session_id
WHERE r.campaign_id = {campaign}
ORDER BY r.id
"""
STEPS = ("greeted", "answered", "epic_given", "booth_shared")
SAVES = ("knows_booth", "epic")


def baseline_sql(campaign_id: int, *, formatted: bool) -> str:
    """The SELECT of the baselines (PostgreSQL); ``formatted``: times as text in the database."""

    def iso(column: str) -> str:
        if not formatted:
            return column
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""

    steps = ", ".join(
        iso(f"(SELECT f.reached_at FROM funnel_events f WHERE f.session_id = r.session_id AND f.step = '{step}')")
        for step in STEPS
    )
    answers = ", ".join(
        f"(SELECT a.value #>> '{{}}' FROM answers a WHERE a.session_id = r.session_id AND a.name = '{name}' "
        "ORDER BY a.id DESC LIMIT 1)"
        for name in SAVES
    )
    return BASELINE_SQL.format(
        iso_q=iso("r.queued_at"),
        iso_s=iso("r.sent_at"),
        iso_d=iso("r.delivered_at"),
        iso_r=iso("r.read_at"),
        iso_replied=iso("s.replied_at"),
        iso_ended=iso("s.ended_at"),
        steps=steps,
        answers=answers,
        campaign=int(campaign_id),
    )


def psycopg_url(url: str) -> str:
    """The SQLAlchemy URL as libpq understands it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def rss_cpu_now() -> tuple[int, float, float]:
    """Peak RSS so far (kB), CPU seconds used so far, and the clock."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_maxrss, usage.ru_utime + usage.ru_stime, time.perf_counter()


def child(mode: str, url: str, campaign_id: int, out: Path) -> dict[str, Any]:
    """Run one export in this (fresh) process; report its time, rows and peak RSS."""
    start_rss, start_cpu, start = rss_cpu_now()
    if mode == "export":
        from bot.db import Database
        from campaigns.exporters import REGISTRY
        from campaigns.models import Campaign

        db = Database(url)
        start_rss, start_cpu, start = rss_cpu_now()
        with db.session() as session, out.open("w", encoding="utf-8", newline="") as fh:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            rows = REGISTRY["csv"](session, campaign).write(fh)
        db.dispose()
    else:
        import psycopg

        conn = psycopg.connect(psycopg_url(url))
        if mode == "copy":
            sql = f"COPY ({baseline_sql(campaign_id, formatted=True)}) TO STDOUT WITH (FORMAT csv)"
            with out.open("wb") as fh, conn.cursor().copy(sql) as copy:
                for data in copy:
                    fh.write(data)
            with out.open("rb") as fh:
                rows = sum(1 for _ in fh)  # no cell holds a line break
        else:
            rows = 0
            with (
                conn.transaction(),
                conn.cursor(name="bench_export") as cur,
                out.open("w", encoding="utf-8", newline="") as fh,
            ):
                cur.itersize = 5000
                cur.execute(baseline_sql(campaign_id, formatted=False))
                writer = csv.writer(fh, lineterminator="\r\n")
                for row in cur:
                    writer.writerow(row)
                    rows += 1
        conn.close()
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "rows": rows,
        "seconds": seconds,
        "cpu_s": usage.ru_utime + usage.ru_stime - start_cpu,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "start_rss_mb": start_rss / 1024,
    }


def prepare(url: str, schema: str | None, rows: int) -> dict[str, Any]:
    """Build the world, launch the campaign and play its sends; return the URL and campaign id."""
    from bench import campaign_world
    from bench.dbsetup import fresh_database
    from campaigns import operations

    db = fresh_database(url, schema)
    url = db.engine.url.render_as_string(hide_password=False)
    db.dispose()
    rt = campaign_world.runtime(url)
    rt.redis.flushdb()  # db 10 is this benchmark's own
    start = time.perf_counter()
    campaign_world.seed(rt)
    campaign_world.build(rt, rows)
    campaign_id = campaign_world.booth_campaign(rt)
    operations.launch(rt, campaign_id, now=campaign_world.NOW)
    rt.redis.flushdb()  # nobody sends them: the sends are played below
    counts = play_sends(rt, campaign_id)
    rt.close()
    return {"url": url, "campaign": campaign_id, "counts": counts, "build_s": time.perf_counter() - start}


def run_child(mode: str, url: str, campaign_id: int, out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.export", "--child", mode, url, str(campaign_id), str(out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    from bench.dbsetup import add_pg_option

    add_pg_option(parser)
    parser.add_argument("--reuse", action="store_true", help="export the world a previous run left")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "URL", "CAMPAIGN", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs=3, metavar=("URL", "SCHEMA", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, url, campaign, out = args.child
        print(json.dumps(child(mode, url, int(campaign), Path(out))))
        return 0
    if args.prepare:
        url, schema, n = args.prepare
        print(json.dumps(prepare(url, schema, int(n))))
        return 0

    OUT.mkdir(exist_ok=True)
    state = OUT / "export_world.json"
    if args.reuse and state.exists():
        world = json.loads(state.read_text())
        print(f"re-using the world of {world['counts']['recipients']:,} recipients in {state}")
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.export", "--prepare", args.pg, "bench_export", str(args.rows)],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        if proc.returncode != 0:
            print(f"prepare FAILED\n{proc.stderr}")
            return 1
        world = json.loads(proc.stdout.strip().splitlines()[-1])
        state.write_text(json.dumps(world))
        print(f"world built and sends played in {world['build_s']:.1f} s: {json.dumps(world['counts'])}")
    url, campaign_id = world["url"], world["campaign"]
    results = {}
    for mode in ("copy", "cursor", "export"):
        results[mode] = r = run_child(mode, url, campaign_id, OUT / f"export_{mode}.csv")
        size = (OUT / f"export_{mode}.csv").stat().st_size / 1e6
        print(
            f"{mode:>6}: {r['rows']:,} rows in {r['seconds']:.2f} s = {r['rows'] / r['seconds']:,.0f} rows/s "
            f"(its CPU {r['cpu_s']:.2f} s), "
            f"{size:.1f} MB, peak RSS {r['peak_rss_mb']:.0f} MB (after imports and connecting: "
            f"{r['start_rss_mb']:.0f} MB)"
        )
    export = results["export"]
    rate = export["rows"] / export["seconds"]
    for mode, label in (("copy", "COPY ... TO STDOUT"), ("cursor", "psycopg cursor + csv")):
        base = results[mode]["rows"] / results[mode]["seconds"]
        print(f"  export / {label}: {rate / base:.2f}x the baseline's rows/s")
    fast, small = rate >= TARGET_ROWS_S, export["peak_rss_mb"] <= TARGET_RSS_MB
    print(
        f"  target >= {TARGET_ROWS_S:,} rows/s: {'met' if fast else 'NOT MET'} ({rate:,.0f}); "
        f"peak RSS <= {TARGET_RSS_MB} MB: {'met' if small else 'NOT MET'} ({export['peak_rss_mb']:.1f} MB)"
    )
    return 0 if fast and small else 1


if __name__ == "__main__":
    sys.exit(main())
