"""Shared set-up of the campaign benchmarks: a database with voters, a fake Twilio, workers.

- ``World.create``: a fresh PostgreSQL schema (or SQLite file) with the demo flows, a
  WhatsApp sender of the twilio provider, the ``booth_reminder`` template (approved, with a
  Content SID) and ``n`` voters tagged ``ward=3``, inserted in one SQL statement.
- ``FakeProcess``: ``bench.fake_twilio`` (the tests' ``FakeTwilioMessages``) in a process of
  its own, so that answering does not take the sender's GIL; it records the moment each
  request arrived.
- ``Workers``: real ``python worker.py`` processes on the benchmark's database and Redis.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import text

from bench.dbsetup import fresh_database
from bot.db import Database
from bot.runtime import Runtime
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SID = "AC" + "be" * 16
TOKEN = "bench-auth-token"
CONTENT_SID = "HX" + "be" * 16
WHATSAPP = "+919999900001"
SPEC = """
name: Bench blast
channel: whatsapp
sender: "+919999900001"
template: {name: booth_reminder, language: en}
variables:
  1: {contact: name}
  2: {tag: ward}
audience: {tag: ward}
flow: {name: booth_locator, at: knows}
pace: 20/s
"""


def phone(i: int) -> str:
    """The ``i``-th voter's number (Indian mobile range, E.164)."""
    return f"+9198{i:08d}"


@dataclasses.dataclass
class World:
    """A benchmark's database, Redis and runtime, and the environment its workers get."""

    rt: Runtime
    env: dict[str, str]

    @classmethod
    def create(
        cls,
        database_url: str,
        schema: str,
        redis_url: str,
        *,
        api_base: str,
        public_base_url: str = "http://127.0.0.1:9",
        voters: int,
        sender_rate: float,
    ) -> World:
        """A fresh database with ``voters`` voters, and a runtime pointed at ``api_base``."""
        db = fresh_database(database_url, schema)
        url = db.engine.url.render_as_string(hide_password=False)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "CANVASS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_API_BASE": api_base,
            "PUBLIC_BASE_URL": public_base_url,
            "SECRET_KEY": "bench",
            "CANVASS_ACTIONS": "flows.actions",
            "PYTHONPATH": str(ROOT),
        }
        settings = Settings.from_env(env, var_dir=ROOT / "var" / "bench")
        conn = redis.Redis.from_url(redis_url)
        conn.flushdb()
        rt = Runtime(settings, db, conn)
        _seed(db, voters, sender_rate)
        return cls(rt, env)

    def campaign(self, pace: float, batch_size: int | None = None) -> int:
        """Create the blast campaign (ready, not launched); return its id."""
        from campaigns import operations, spec

        fields = spec.parse(SPEC, "bench.yaml") | {"pace_per_s": pace, "batch_size": batch_size}
        with self.rt.db.session() as db:
            campaign = operations.create(db, fields, region="IN")
            assert campaign.status == "ready", campaign.problems
            return campaign.id

    def close(self) -> None:
        """Release the connections."""
        self.rt.db.dispose()
        self.rt.redis.close()


def _seed(db: Database, voters: int, sender_rate: float) -> None:
    from bot.engine import load_path
    from bot.flowlibrary import clear_cache
    from bot.flowstore import store
    from bot.models import Sender
    from campaigns import templates

    with db.session() as s:
        for name in ("booth_locator", "turnout_reminder", "grievance_intake"):
            path = ROOT / "flows" / f"{name}.yaml"
            store(s, load_path(path), path.read_text())
        s.add(Sender(provider="twilio", channel="whatsapp", address=WHATSAPP, healthy=True, rate_per_s=sender_rate))
        path = ROOT / "campaigns" / "examples" / "booth_reminder.template.yaml"
        templates.store(s, templates.parse_file(path.read_text(), str(path)))
        s.flush()
        from campaigns.models import Template

        template_id = s.scalar(text("SELECT id FROM templates WHERE name = 'booth_reminder'"))
        assert template_id is not None and s.get(Template, template_id) is not None
        version = templates.latest_version(s, template_id, "en")
        assert version is not None
        templates.approve_in_sandbox(version)
        version.content_sid = CONTENT_SID
    clear_cache()
    series = (
        "generate_series(1, :n) AS g(i)"
        if db.dialect == "postgresql"
        else "(WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n) SELECT i FROM g) AS g"
    )
    number = "'+9198' || lpad(i::text, 8, '0')" if db.dialect == "postgresql" else "printf('+9198%08d', i)"
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contacts (phone, phone_kind, name, fields, consent, timezone, created_at, updated_at) "
                f"SELECT {number}, 'mobile', 'Voter ' || i, '{{}}', 'unknown', 'Asia/Kolkata', "
                f"CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM {series}"
            ),
            {"n": voters},
        )
        conn.execute(text("INSERT INTO contact_tags (contact_id, name, value) SELECT id, 'ward', '3' FROM contacts"))
        if db.dialect == "postgresql":
            conn.execute(text("ANALYZE contacts"))
            conn.execute(text("ANALYZE contact_tags"))


class FakeProcess:
    """``bench.fake_twilio`` in a child process; ``arrivals()`` after ``stop()``."""

    def __init__(self, *, latency_s: float = 0.0, callbacks: bool = False, times_path: Path | None = None) -> None:
        self.times_path = times_path
        args = [sys.executable, "-m", "bench.fake_twilio", "--latency", str(latency_s)]
        if callbacks:
            args.append("--callbacks")
        if times_path is not None:
            args += ["--times", str(times_path)]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise SystemExit(f"the fake Twilio did not start: {self.url!r}")

    def stop(self) -> dict[str, Any]:
        """Stop it; return what it recorded (``count``, and ``arrivals``: (time, to) pairs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        if self.times_path is None or not self.times_path.exists():
            return {"count": None, "arrivals": []}
        return json.loads(self.times_path.read_text())


class Workers:
    """``count`` RQ worker processes (``python worker.py``) with the world's environment."""

    def __init__(
        self,
        env: dict[str, str],
        count: int,
        *,
        extra: tuple[str, ...] = (),
        log: Path | None = None,
        calls: Path | None = None,
    ):
        out = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self._out = out
        # With ``calls``: bench.timed_worker, which records each provider call's moment there.
        program = ["-m", "bench.timed_worker"] if calls else ["worker.py"]
        env = {**env, "CANVASS_BENCH_CALLS": str(calls)} if calls else env
        self.procs = [
            subprocess.Popen([sys.executable, *program, *extra], cwd=ROOT, env=env, stdout=out, stderr=out)
            for _ in range(count)
        ]

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then wait."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if hasattr(self._out, "close"):
            self._out.close()


def recipient_counts(rt: Runtime, campaign_id: int, column: Any) -> dict[Any, int]:
    """The campaign's recipients counted by ``column`` (``Recipient.status``, ``Recipient.batch``...)."""
    from sqlalchemy import func, select

    from campaigns.models import Recipient

    with rt.db.session() as db:
        rows = db.execute(
            select(column, func.count()).where(Recipient.campaign_id == campaign_id).group_by(column)
        ).tuples()
        return dict(rows.all())


def wait_for(predicate: Any, timeout: float, every: float = 0.5) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())
