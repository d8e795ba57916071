"""Benchmark: the console's pages on 1,000,000 contacts and a 100,000-recipient campaign.

Run:  .venv/bin/python -m bench.console_pages [--runs 20] [--pg URL] [--reuse] [--explain MS]

Builds the world of ``bench/console_world.py`` on PostgreSQL (a private schema), then
serves the real Flask app (``create_app`` on that database) through its test client,
signed in as an admin, and times each page ``--runs`` times after a warm-up: median and
p95, and how many SQL statements one request issued. Baselines in the same run:

    trivial    a logged-in page that does almost nothing (``/users``: one small SELECT)
    SQL        the page's own SQL alone: every statement one request issued, captured
               with a SQLAlchemy event listener and replayed, with its parameters, on a
               plain DBAPI connection (median and p95 of the replays)

so that "page minus SQL" is what Python and the template cost. ``--explain MS`` prints
``EXPLAIN ANALYZE`` of every statement slower than MS milliseconds.

Target (issue 8): the campaign page renders in < 300 ms (median) on that data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.loopback import percentile_ms

OUT = Path(__file__).resolve().parent / "out"
TARGET_MS = 300.0
SCHEMA = "bench_console"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def pages(world: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, path) of every page timed; the first is the trivial baseline."""
    c, voter = world["campaign"], world["voter"]
    return [
        ("trivial logged-in page", "/users"),
        ("campaign page", f"/campaigns/{c}"),
        ("campaign progress.json", f"/campaigns/{c}/progress.json"),
        ("campaigns list", "/campaigns"),
        ("ready campaign (audience 1M)", f"/campaigns/{world['ready_campaign']}"),
        ("contacts, first page", "/contacts"),
        ("contacts, tag ward=12", "/contacts?tag=ward%3D12"),
        ("contacts, page 5,000", "/contacts?page=5000"),
        ("voter page (long timeline)", f"/contacts/{voter}"),
        ("inbox (mine)", "/inbox"),
        ("inbox (all open)", "/inbox?tab=all"),
        ("flows", "/flows"),
        ("dashboard", "/"),
    ]


class Statements:
    """Records the SQL statements an engine runs while ``on`` is set."""

    def __init__(self, engine: Any) -> None:
        self.on = False
        self.seen: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if self.on:
            self.seen.append((statement, parameters))

    def during(self, fn: Any) -> list[tuple[str, Any]]:
        self.seen, self.on = [], True
        try:
            fn()
        finally:
            self.on = False
        return self.seen


def sign_in(app: Any) -> Any:
    """A test client signed in as the world's admin, through the real login form."""
    from bench.console_world import ADMIN, PASSWORD

    client = app.test_client()
    token = CSRF.search(client.get("/login").get_data(as_text=True))
    assert token, "no CSRF token on /login"
    answer = client.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": token.group(1)})
    assert answer.status_code == 302, f"login failed: {answer.status_code}"
    return client


def timed(fn: Any, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def replay(raw: Any, statements: list[tuple[str, Any]]) -> None:
    """Run the captured SELECTs again, with their parameters, and fetch every row."""
    cur = raw.cursor()
    for sql, params in statements:
        cur.execute(sql, params)
        cur.fetchall()
    raw.rollback()


def explain(raw: Any, statements: list[tuple[str, Any]], slower_ms: float) -> None:
    cur = raw.cursor()
    for sql, params in statements:
        start = time.perf_counter()
        cur.execute(sql, params)
        cur.fetchall()
        ms = (time.perf_counter() - start) * 1000
        if ms >= slower_ms:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join("      " + row[0] for row in cur.fetchall())
            print(f"    {ms:.1f} ms: {' '.join(sql.split())[:300]}\n{plan}")
    raw.rollback()


def measure(world: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    from web import create_app

    app = create_app(
        {
            "DATABASE_URL": world["url"],
            "REDIS_URL": args.redis,
            "SECRET_KEY": "bench",
            "CANVASS_VAR_DIR": str(OUT / "console_var"),
        }
    )
    client = sign_in(app)
    engine = app.extensions["canvass"].db.engine
    recorder = Statements(engine)
    raw = engine.raw_connection()
    results = []
    try:
        for label, path in pages(world):
            if args.only and label != "trivial logged-in page" and not any(w in label for w in args.only):
                continue

            def get(path: str = path) -> None:
                answer = client.get(path)
                assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.headers.get('Location')}"

            page_times = timed(get, args.runs, args.warmup)
            statements = recorder.during(get)
            selects = [(sql, p) for sql, p in statements if sql.lstrip().upper().startswith(("SELECT", "WITH"))]
            sql_times = timed(lambda s=selects: replay(raw, s), args.runs, 1)
            row = {
                "page": label,
                "path": path,
                "statements": len(statements),
                "writes": len(statements) - len(selects),
                "median_ms": statistics.median(page_times) * 1000,
                "p95_ms": percentile_ms(page_times, 0.95),
                "sql_median_ms": statistics.median(sql_times) * 1000,
                "sql_p95_ms": percentile_ms(sql_times, 0.95),
            }
            results.append(row)
            print(
                f"{label:<30} {row['statements']:>5} {row['median_ms']:>9.1f} {row['p95_ms']:>8.1f}"
                f" {row['sql_median_ms']:>9.1f} {row['sql_p95_ms']:>8.1f}"
                f" {row['median_ms'] - row['sql_median_ms']:>9.1f}",
                flush=True,
            )
            if args.explain is not None:
                explain(raw, selects, args.explain)
    finally:
        raw.close()
        app.extensions["canvass"].close()
    return results


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    from bench.dbsetup import add_pg_option

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pg_option(parser)
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/11", help="a database of its own: flushed while the world is built"
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="time the world a previous run left")
    parser.add_argument("--explain", type=float, metavar="MS", help="EXPLAIN ANALYZE statements slower than MS")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--only", nargs="+", metavar="WORD", help="time only the pages whose label has one of these")
    args = parser.parse_args()
    print(f"load average at the start: {loadavg()}")
    OUT.mkdir(exist_ok=True)
    state = OUT / "console_world.json"
    if args.reuse and state.exists():
        world = json.loads(state.read_text())
        print(f"re-using the world in {state}: {json.dumps(world['counts'])}")
    else:
        from bench.console_world import build

        world = build(args.pg, SCHEMA, args.contacts, args.recipients, args.redis)
        state.write_text(json.dumps(world))
        print(f"world built in {world['build_s']} s: {json.dumps(world['counts'])}")
    print(f"{args.runs} runs per page after {args.warmup} warm-up requests; times in ms")
    print(f"{'page':<30} {'stmts':>5} {'median':>9} {'p95':>8} {'SQL med':>9} {'SQL p95':>8} {'page-SQL':>9}")
    results = measure(world, args)
    trivial = results[0]["median_ms"]
    campaign = next((r for r in results if r["page"] == "campaign page"), None)
    if campaign is None:
        return 0
    print(f"campaign page: {campaign['median_ms'] / trivial:.1f}x the trivial page's median")
    met = campaign["median_ms"] < TARGET_MS
    print(f"target: campaign page < {TARGET_MS:.0f} ms: {'met' if met else 'NOT MET'} ({campaign['median_ms']:.1f} ms)")
    print(f"load average at the end: {loadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"world": world, "results": results}, indent=1))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
