"""Benchmark: import a 1,000,000-row contacts CSV on PostgreSQL and SQLite, then count segments.

Run:  .venv/bin/python -m bench.import_contacts [--rows 1000000] [--pg URL] [--skip-sqlite]

Prints, in one run: the baseline (phonenumbers parse + validate on one core, the cost the
import cannot avoid), each import's rows/s, peak memory and ratio to the baseline, and the
time of segment preview counts over the imported contacts (against a bare COUNT(*)).

PostgreSQL is imported twice: as the URL's role (the local superuser), and as a role of
its own that may not set session_replication_role (``--skip-plain-role`` leaves it out),
for which the tags of new contacts keep the foreign key's row-by-row check
(bot.import_upsert.may_skip_key_checks). The second role is created for the run and
dropped after it.

On a shared machine wall time says little, so each import also reports CPU seconds: the
importing process (reader and writer thread), its parsing workers (the forkserver's
children, sampled from /proc) and the PostgreSQL backends of its connections (a local
server). The load average is printed before and after.

Targets (issue 2): >= 40,000 rows/s on PostgreSQL, >= 20,000 rows/s on SQLite, and a
segment preview count under 1 s at 1 M contacts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SEGMENTS = {
    "tag": {"tag": "volunteer"},
    "tag+valued": {"all": [{"tag": "volunteer"}, {"tag": "ward", "eq": "12"}]},
    "any/not/in": {
        "all": [
            {"any": [{"tag": "ward", "in": ["3", "4", "5"]}, {"field": "language", "eq": "hi"}]},
            {"not": {"consent": "opted_out"}},
            {"not": {"tag": "youth"}},
        ]
    },
}


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    """Write a messy, realistic file: mixed number formats, names, tags, a valued column."""
    if path.exists() and path.stat().st_size > 0 and path.with_suffix(".rows").read_text() == str(rows):
        return
    rng = random.Random(seed)
    formats = ("+91 {a}{b} {c}", "0{a}{b}-{c}", "{a}{b}{c}", "+91{a}{b}{c}", "91 {a}{b} {c}")
    names = ("Asha", "Ravi", "Meena", "Arjun", "Fatima", "Joseph", "Lakshmi", "Vikram")
    with path.open("w", encoding="utf-8") as fh:
        fh.write("phone,name,language,tags,ward\n")
        for i in range(rows):
            n = 9000000000 + i * 7 % 999999999
            s = str(n)
            phone = rng.choice(formats).format(a=s[0], b=s[1:5], c=s[5:])
            tags = rng.choice(("volunteer", "volunteer;youth", "", "youth", ""))
            fh.write(f"{phone},{rng.choice(names)} {i},{rng.choice(('hi', 'en', 'mr'))},{tags},{rng.randint(1, 40)}\n")
    path.with_suffix(".rows").write_text(str(rows))


def baseline(sample: int = 50000) -> float:
    """Rows/s of phonenumbers.parse + is_valid_number on one core (no database)."""
    import phonenumbers

    rng = random.Random(1)
    nums = [f"+91 9{rng.randint(100000000, 999999999)}" for _ in range(sample)]
    start = time.perf_counter()
    for text in nums:
        phonenumbers.is_valid_number(phonenumbers.parse(text, "IN"))
    return sample / (time.perf_counter() - start)


def run_one(url: str, csv_path: Path, schema: str | None) -> dict:
    """Import into a fresh database (in this process) and time the segment counts."""
    from bench.dbsetup import fresh_database
    from bot.db import Database
    from bot.segments import count

    db: Database = fresh_database(url, schema)
    db.dispose()
    from bot.contact_import import import_file

    cpu = CpuMeter(db)
    start = time.perf_counter()
    report = import_file(db, csv_path, region="IN")
    seconds = time.perf_counter() - start
    result = {"rows": report.rows, "imported": report.imported, "rejected": report.rejected, "seconds": seconds}
    result["cpu_s"] = cpu.stop()
    from sqlalchemy import text

    if db.dialect == "postgresql":
        # What autovacuum does soon after a bulk load: sets the visibility map, so that
        # index-only scans skip the heap.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE contacts")
            conn.exec_driver_sql("VACUUM ANALYZE contact_tags")
    with db.session() as session:
        t = time.perf_counter()
        total = session.execute(text("SELECT COUNT(*) FROM contacts")).scalar_one()
        result["count_all_s"] = time.perf_counter() - t
        result["contacts"] = total
        for name, spec in SEGMENTS.items():
            count(session, spec)  # warm the cache once, as a console preview would be
            t = time.perf_counter()
            n = count(session, spec)
            result[f"segment {name}"] = {"count": n, "seconds": time.perf_counter() - t}
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_rss_mb"] = {"main": own / 1024, "largest_worker": report.worker_peak_rss_kb / 1024}
    db.dispose()
    return result


def _cpu_of(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds so far) of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of this process, its descendants (the parsing workers) and its PostgreSQL backends.

    Workers exit with the import, so a thread samples /proc every 0.1 s and keeps each
    process's last figure (what a worker does in its last 0.1 s is missed).
    """

    def __init__(self, db: object) -> None:
        from sqlalchemy import event

        self.backends: set[int] = set()
        self.last: dict[tuple[str, int], float] = {}
        if db.dialect == "postgresql":  # type: ignore[attr-defined]
            event.listen(db.engine, "connect", self._connected)  # type: ignore[attr-defined]
        self.started = time.process_time()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _connected(self, dbapi_conn: object, _record: object) -> None:
        self.backends.add(dbapi_conn.info.backend_pid)  # type: ignore[attr-defined]

    def _sample(self) -> None:
        me = os.getpid()
        while True:
            procs = {int(d): found for d in os.listdir("/proc") if d.isdigit() and (found := _cpu_of(int(d)))}
            for pid, (parent, seconds) in procs.items():
                # The forkserver is our child, the workers its children.
                if parent == me or procs.get(parent, (0, 0.0))[0] == me:
                    self.last[("workers", pid)] = seconds
            for pid in list(self.backends):
                if pid in procs:
                    self.last[("postgresql", pid)] = procs[pid][1]
            if self.done.wait(0.1):
                return

    def stop(self) -> dict[str, float]:
        """Stop sampling; CPU seconds by part."""
        main = time.process_time() - self.started
        self.done.set()
        self.thread.join()
        parts = {"main": main, "workers": 0.0, "postgresql": 0.0}
        for (part, _pid), seconds in self.last.items():
            parts[part] += seconds
        return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    from bench.dbsetup import add_pg_option

    add_pg_option(parser)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-plain-role", action="store_true", help="import into PostgreSQL as one role only")
    parser.add_argument("--one", nargs=3, metavar=("URL", "CSV", "SCHEMA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        url, csv_path, schema = args.one
        print(json.dumps(run_one(url, Path(csv_path), schema if schema != "-" else None)))
        return 0

    OUT.mkdir(exist_ok=True)
    csv_path = OUT / f"contacts_{args.rows}.csv"
    make_csv(csv_path, args.rows)
    print(f"file: {csv_path} ({csv_path.stat().st_size / 1e6:.1f} MB, {args.rows:,} rows)")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base = baseline()
    print(f"baseline: phonenumbers parse+validate, one core: {base:,.0f} rows/s")
    targets = []
    plain = None
    if not args.skip_pg:
        targets.append(("postgresql", args.pg, "bench_import", 40_000))
        if not args.skip_plain_role:
            plain = plain_role(args.pg, PLAIN_SCHEMA)
            # For comparison (no target): an import as a role that is no superuser.
            name = f"postgresql as {PLAIN_ROLE} (may not SET session_replication_role)"
            targets.append((name, plain, PLAIN_SCHEMA, 0))
    if not args.skip_sqlite:
        sqlite = OUT / "bench.db"
        targets.append(("sqlite", f"sqlite:///{sqlite}", "-", 20_000))
    ok = True
    try:
        for name, url, schema, target in targets:
            ok = report(name, url, schema, target, csv_path, base) and ok
    finally:
        if plain is not None:
            drop_plain_role(args.pg, PLAIN_SCHEMA)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


def report(name: str, url: str, schema: str, target: int, csv_path: Path, base: float) -> bool:
    """Run one import in a subprocess and print its figures; return whether it met ``target``."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.import_contacts", "--one", url, str(csv_path), schema],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0:
        print(f"{name}: FAILED\n{proc.stderr}")
        return False
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    rate = r["rows"] / r["seconds"]
    goal = f"target {target:,}: {'meets' if rate >= target else 'BELOW'}" if target else "for comparison"
    print(
        f"{name}: {r['rows']:,} rows in {r['seconds']:.1f} s = {rate:,.0f} rows/s "
        f"({rate / base:.2f}x baseline; {goal}); "
        f"peak RSS main {r['peak_rss_mb']['main']:.0f} MB, "
        f"largest worker {r['peak_rss_mb']['largest_worker']:.0f} MB"
    )
    cpu = r["cpu_s"]
    print(
        f"  CPU: main {cpu['main']:.1f} s, workers {cpu['workers']:.1f} s, PostgreSQL {cpu['postgresql']:.1f} s "
        f"= {sum(cpu.values()):.1f} s ({sum(cpu.values()) / r['rows'] * 1e6:.1f} us a row)"
    )
    print(f"  COUNT(*) of {r['contacts']:,} contacts: {r['count_all_s'] * 1000:.0f} ms")
    for key, value in r.items():
        if key.startswith("segment "):
            ratio = value["seconds"] / max(r["count_all_s"], 1e-6)
            mark = "meets" if value["seconds"] < 1 else "BELOW"
            print(
                f"  {key}: {value['count']:,} contacts in {value['seconds'] * 1000:.0f} ms "
                f"({ratio:.1f}x COUNT(*); target < 1 s: {mark})"
            )
    return rate >= target


PLAIN_ROLE = "canvass_bench_plain"
PLAIN_SCHEMA = "bench_import_plain"


def plain_role(url: str, schema: str) -> str:
    """Create a login role that is no superuser, owning ``schema``; return ``url`` as that role."""
    from sqlalchemy import make_url, text

    from bot.db import Database
    from bot.settings import normalize_database_url

    admin = Database(normalize_database_url(url))
    database = admin.engine.url.database
    with admin.engine.begin() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": PLAIN_ROLE}).first():
            conn.exec_driver_sql(f"CREATE ROLE {PLAIN_ROLE} LOGIN NOSUPERUSER")
        conn.exec_driver_sql(f'GRANT CREATE ON DATABASE "{database}" TO {PLAIN_ROLE}')
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}" AUTHORIZATION {PLAIN_ROLE}')
    admin.dispose()
    return make_url(url).set(username=PLAIN_ROLE, password=None).render_as_string(hide_password=False)


def drop_plain_role(url: str, schema: str) -> None:
    """Drop the schema and the role ``plain_role`` made."""
    from sqlalchemy import text

    from bot.db import Database
    from bot.settings import normalize_database_url

    admin = Database(normalize_database_url(url))
    database = admin.engine.url.database
    with admin.engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": PLAIN_ROLE}).first():
            conn.exec_driver_sql(f'REVOKE CREATE ON DATABASE "{database}" FROM {PLAIN_ROLE}')
            conn.exec_driver_sql(f"DROP ROLE {PLAIN_ROLE}")
    admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
