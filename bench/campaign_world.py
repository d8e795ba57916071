"""A campaign world at scale for the campaign benchmarks: a million voters, senders, a ready campaign.

Voters are made in bulk (COPY on PostgreSQL, ``executemany`` in one transaction on
SQLite) from their number ``i``, with no randomness, so that both databases hold the
same voters. Every skip branch of the planner has its share:

    i % 100 in (1, 2)      opted out                        -> opted_out
    i % 200 == 3           number of unknown kind           -> invalid_number
    i % 100 == 4           landline                         -> not_mobile
    i % 100 == 5           known not to have WhatsApp       -> no_whatsapp
    i % 100 == 6           an open handoff case             -> handoff_open
    i % 100 in (8, 9, 10)  reached by another live campaign -> engaged_elsewhere
    i % 100 == 11          no name                          -> missing_variable
    i % 50 == 7            ward tag without a value         -> missing_variable

and near misses that must *not* skip: a closed handoff (16), a voter of a test campaign
(17), of an ended campaign (18), skipped by another live campaign (19). Everyone has a
``ward=N`` tag (the audience is ``tag: ward``); a third are also ``volunteer``.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import redis
from sqlalchemy import select, text

from bot.db import Database
from bot.engine import load_path
from bot.flowlibrary import clear_cache
from bot.flowstore import store
from bot.models import Sender
from bot.runtime import Runtime
from bot.settings import Settings
from campaigns import operations, spec, templates
from campaigns.models import Campaign, Template

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/10"
WHATSAPP = "+919999900001"
NOW = dt.datetime(2026, 11, 29, 6, 0, tzinfo=dt.UTC)
SPEC = """
name: Booth reminder (benchmark)
channel: whatsapp
sender: "+919999900001"
template: {name: booth_reminder, language: en}
variables:
  1: {contact: name}
  2: {tag: ward}
audience: {tag: ward}
flow: {name: booth_locator, at: knows}
pace: 100/s
"""


def runtime(url: str, redis_url: str = REDIS_URL) -> Runtime:
    """A runtime on ``url`` and ``redis_url`` (Redis db 10 by default; nothing read from the environment)."""
    settings = Settings.from_env(
        {}, {"DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": "bench"}, var_dir=ROOT / "bench" / "out"
    )
    return Runtime(settings=settings, db=Database(settings.database_url), redis=redis.Redis.from_url(redis_url))


def contact_rows(n: int) -> Iterator[tuple[object, ...]]:
    """(id, phone, phone_kind, name, language, consent, whatsapp) of voters 1..n."""
    languages = ("hi", "en", "mr")
    for i in range(1, n + 1):
        k = i % 100
        kind = "fixed_line" if k == 4 else "unknown" if i % 200 == 3 else "mobile"
        phone = f"+9120{i:08d}" if k == 4 else f"+9198{i:08d}"
        name = None if k == 11 else f"Voter {i}"
        consent = "opted_out" if k in (1, 2) else "unknown"
        whatsapp = False if k == 5 else (True if k % 3 == 0 else None)
        yield (i, phone, kind, name, languages[i % 3], consent, whatsapp)


def tag_rows(n: int) -> Iterator[tuple[object, ...]]:
    """(contact_id, name, value): ward for everyone (empty for some), volunteer for a third."""
    for i in range(1, n + 1):
        yield (i, "ward", "" if i % 50 == 7 else str(i % 40 + 1))
        if i % 3 == 0:
            yield (i, "volunteer", None)


def _copy(db: Database, table: str, columns: list[str], rows: Iterator[tuple[object, ...]]) -> None:
    """COPY rows into ``table`` (PostgreSQL) or insert them in one transaction (SQLite)."""
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if db.dialect == "postgresql":
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                buf = io.StringIO()
                for count, row in enumerate(rows, 1):
                    buf.write("\t".join("\\N" if v is None else str(v) for v in row))
                    buf.write("\n")
                    if count % 50000 == 0:
                        copy.write(buf.getvalue())
                        buf = io.StringIO()
                copy.write(buf.getvalue())
        else:
            marks = ", ".join("?" for _ in columns)
            cur.execute("BEGIN")  # the engine's connections autocommit otherwise (see bot.db)
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        raw.commit()
    finally:
        raw.close()


def seed(rt: Runtime) -> None:
    """Flows, a sandbox WhatsApp sender, the example templates (booth_reminder's English approved)."""
    with rt.db.session() as db:
        for name in ("booth_locator", "turnout_reminder"):
            path = ROOT / "flows" / f"{name}.yaml"
            store(db, load_path(path), path.read_text())
        db.add(Sender(provider="sandbox", channel="whatsapp", address=WHATSAPP, healthy=True, rate_per_s=100))
        for name in ("booth_reminder", "turnout_sms"):
            path = ROOT / "campaigns" / "examples" / f"{name}.template.yaml"
            templates.store(db, templates.parse_file(path.read_text(), str(path)))
        template_id = db.scalar(select(Template.id).where(Template.name == "booth_reminder"))
        assert template_id is not None
        version = templates.latest_version(db, template_id, "en")
        assert version is not None
        templates.approve_in_sandbox(version)
    clear_cache()


def other_campaign(rt: Runtime, name: str, status: str, *, is_test: bool = False) -> int:
    """A bare campaign row (no template, flow or audience) in ``status``."""
    with rt.db.session() as db:
        campaign = Campaign(name=name, status=status, channel="whatsapp", is_test=is_test, problems=[])
        db.add(campaign)
        db.flush()
        return campaign.id


def build(rt: Runtime, n: int) -> dict[str, int]:
    """Make ``n`` voters, their tags, handoffs and earlier campaigns; return the campaigns' ids."""
    db = rt.db
    now = NOW.isoformat() if db.dialect == "postgresql" else NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
    true, false = ("t", "f") if db.dialect == "postgresql" else (1, 0)
    _copy(
        db,
        "contacts",
        ["id", "phone", "phone_kind", "name", "language", "fields", "consent", "created_at", "updated_at", "whatsapp"],
        (
            (i, phone, kind, name, lang, "{}", consent, now, now, None if wa is None else true if wa else false)
            for i, phone, kind, name, lang, consent, wa in contact_rows(n)
        ),
    )
    _copy(db, "contact_tags", ["contact_id", "name", "value"], tag_rows(n))
    _copy(
        db,
        "handoff_cases",
        ["contact_id", "status", "opened_at"],
        ((i, "open" if i % 100 == 6 else "closed", now) for i in range(1, n + 1) if i % 100 in (6, 16)),
    )
    ids = {
        "live": other_campaign(rt, "Earlier outreach", "active"),
        "test": other_campaign(rt, "Earlier outreach (test)", "active", is_test=True),
        "ended": other_campaign(rt, "Last month", "ended"),
        # Holds the benchmarks' baseline rows for a moment (a draft never engages anyone).
        "baseline": other_campaign(rt, "Baseline", "draft"),
    }
    where = {8: "live", 9: "live", 10: "live", 17: "test", 18: "ended", 19: "live"}
    _copy(
        db,
        "campaign_recipients",
        ["campaign_id", "contact_id", "channel", "status", "attempts"],
        (
            (ids[where[i % 100]], i, "whatsapp", "skipped" if i % 100 == 19 else "delivered", 1)
            for i in range(1, n + 1)
            if i % 100 in where
        ),
    )
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('contacts', 'id'), :n)"), {"n": n})
    analyze(db)
    return ids


def analyze(db: Database) -> None:
    """What autovacuum does soon after a bulk load (the contact import ANALYZEs too)."""
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def booth_campaign(rt: Runtime, **changes: object) -> int:
    """The ready WhatsApp campaign to ``tag: ward`` that the benchmarks launch (``changes``: its fields)."""
    fields = spec.parse(SPEC, "bench.yaml")
    fields.update(changes)
    with rt.db.session() as db:
        campaign = operations.create(db, fields, region="IN")
        assert campaign.status == "ready", campaign.problems
        return campaign.id
