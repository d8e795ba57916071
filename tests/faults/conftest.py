"""The rig of the fault suites: real processes on PostgreSQL, a fake Twilio, faults on demand.

The app serves its webhooks for real (gunicorn, so Twilio's signed status callbacks
land), ``python worker.py`` processes (every other one with ``--fork``: both ways of
running jobs are broken alike) send through the twilio SDK
to ``tests.fakes.twilio_messages``, and the test kills, restarts and breaks them. Every
suite ends with exact counts from the fake's request log and the database.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update

from bot.db import utcnow
from bot.models import Contact, Message, MessageStatusEvent, Sender
from bot.outbox import close_providers
from bot.runtime import Runtime
from campaigns import reconciler
from campaigns.models import Campaign, Recipient
from tests.campaigns.conftest import BOOTH_SPEC, World, seed
from tests.fakes.twilio_http import free_port
from tests.fakes.twilio_messages import Callback, FakeTwilioMessages

ROOT = Path(__file__).resolve().parents[2]
SID = "AC" + "fa" * 16
TOKEN = "fault-suites-auth-token"
CONTENT_SID = "HX" + "fa" * 16
# Send errors a batch retries (the provider refused before taking the message: nothing was sent).
RETRYABLE_CODES = {"20429", "connection", None}  # None: an HTTP 429 or 5xx without a Twilio code
# As if the scheduler ran long after the faults: job leases (90 s) and STALE_SENDING have run out.
LATER = reconciler.STALE_SENDING + dt.timedelta(minutes=5)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (RQ's work-horse puts itself in a process group of its own)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def gone(pid: int) -> bool:
    """True when ``pid`` has exited (or is a zombie nobody reaped yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


class Processes:
    """``python worker.py`` processes and an app server, each in a session of its own, logged to files."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.workers: list[subprocess.Popen[bytes]] = []
        self.others: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        self.started += 1
        with (self.logs / f"{self.started:02d}-{name}.log").open("wb") as log:
            return subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start_workers(self, n: int) -> None:
        # Jobs in the worker's own process (the default), and in a forked work-horse.
        for i in range(n):
            fork = ["--fork"] if i % 2 else []
            self.workers.append(self.spawn([sys.executable, "worker.py", *fork], "worker"))

    def serve_app(self, port: int) -> None:
        args = [sys.executable, "-m", "gunicorn", "web.wsgi:app", "-b", f"127.0.0.1:{port}", "-w", "2"]
        self.others.append(self.spawn([*args, "--threads", "8", "--log-level", "warning"], "web"))

    def kill_workers(self) -> int:
        """SIGKILL every worker and its work-horses, as a lost machine would; return how many processes died."""
        killed = 0
        for proc in self.workers:
            try:
                os.killpg(proc.pid, signal.SIGSTOP)  # no new horse is forked while we look
            except ProcessLookupError:
                continue
            horses = descendants(proc.pid)
            for pid in horses:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            for pid in horses:
                wait_for(lambda pid=pid: gone(pid), 10, f"work-horse {pid} to die")  # type: ignore[misc]
            killed += 1 + len(horses)
        self.workers.clear()
        return killed

    def stop(self) -> None:
        """SIGTERM everything (warm shutdown), then SIGKILL what is left."""
        procs = self.workers + self.others
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.workers.clear()
        self.others.clear()


@dataclasses.dataclass
class Rig:
    """The campaign world on PostgreSQL, the fake Twilio, and the processes that send through it."""

    rt: Runtime
    fake: FakeTwilioMessages
    procs: Processes
    base: str
    unknown: int = 0  # rows the reconciler made unknown (sends lost with a worker)
    released: int = 0  # rows it put back to pending (claimed, never sent)

    def voters(self, n: int, tag: str = "ward") -> list[str]:
        """Add ``n`` mobile voters tagged ``ward=3`` in bulk; return their numbers."""
        phones = [f"+9198{i:08d}" for i in range(n)]
        with self.rt.db.session() as db:
            db.execute(
                insert(Contact), [{"phone": p, "phone_kind": "mobile", "name": f"V{i}"} for i, p in enumerate(phones)]
            )
            db.execute(
                text(f"INSERT INTO contact_tags (contact_id, name, value) SELECT id, '{tag}', '3' FROM contacts")
            )
        return phones

    def campaign(self, pace: float, **changes: Any) -> int:
        with self.rt.db.session() as db:
            db.execute(update(Sender).values(rate_per_s=pace * 2))
        return World(self.rt).campaign(BOOTH_SPEC, pace_per_s=pace, **changes).id

    def status(self, campaign_id: int) -> str:
        with self.rt.db.session() as db:
            return db.scalar(select(Campaign.status).where(Campaign.id == campaign_id)) or ""

    def statuses(self, campaign_id: int) -> dict[str, int]:
        with self.rt.db.session() as db:
            rows = db.execute(
                select(Recipient.status, func.count())
                .where(Recipient.campaign_id == campaign_id)
                .group_by(Recipient.status)
            )
        return dict(rows.tuples().all())

    def reconcile(self, now: dt.datetime | None = None) -> dict[str, int]:
        done = reconciler.reconcile(self.rt, now=now)
        self.unknown += done["unknown"]
        self.released += done["released"]
        return done

    def finish(self, campaign_id: int, timeout: float = 180) -> None:
        """Wait for the campaign to complete; when sending stalls, reconcile as the scheduler would.

        A stall: no provider call for 3 s. Then the batches lost with the faults are queued
        again (and retries whose RQ scheduler died with a worker), as the scheduler's
        reconcile does once their leases ran out.
        """
        deadline = time.monotonic() + timeout
        seen, quiet_since = -1, time.monotonic()
        while self.status(campaign_id) != "completed":
            assert time.monotonic() < deadline, f"the campaign did not complete: {self.statuses(campaign_id)}"
            if len(self.fake.requests) != seen:
                seen, quiet_since = len(self.fake.requests), time.monotonic()
            elif time.monotonic() - quiet_since > 3:
                self.reconcile(now=utcnow() + LATER)
                quiet_since = time.monotonic()
            time.sleep(0.2)
        # Status callbacks still on their way (many, on a busy machine) settle the last rows.
        self.fake.wait_idle(timeout=180)

    def debug(self, rows: list[Any]) -> list[Any]:
        """What the fake and the database know of a few voters."""
        out = []
        with self.rt.db.session() as db:
            for phone, *_ in rows:
                cid = db.scalar(select(Contact.id).where(Contact.phone == phone))
                r = db.scalar(select(Recipient).where(Recipient.contact_id == cid))
                events = db.execute(
                    select(MessageStatusEvent.status, MessageStatusEvent.applied, MessageStatusEvent.raw).where(
                        MessageStatusEvent.message_id == r.message_id  # type: ignore[union-attr]
                    )
                ).all()
                posted = [
                    (c.form.get("MessageStatus"), c.status)
                    for c in self.fake.callbacks
                    if c.form.get("To", "").endswith(phone)
                ]
                out.append((phone, r.status, r.error_code, r.attempts, events, posted))  # type: ignore[union-attr]
        return out

    def calls(self) -> collections.Counter[str]:
        """Provider calls per voter, from the fake's request log.

        A request cut off by a killed worker before its body was complete has no ``To``:
        Twilio refuses it (21604) and nobody is messaged.
        """
        return collections.Counter(
            (r.get("To") or "").removeprefix("whatsapp:") for r in list(self.fake.requests) if r.get("To")
        )

    def lost_answers(self, campaign_id: int) -> int:
        """Messages whose provider answer never reached the database (settled by a callback only)."""
        with self.rt.db.session() as db:
            mids = set(db.scalars(select(Message.id).where(Message.campaign_id == campaign_id)))
            answered = {
                mid
                for mid, raw in db.execute(select(MessageStatusEvent.message_id, MessageStatusEvent.raw))
                if mid in mids and "provider_status" in (raw or {})
            }
        return len(mids - answered)

    def check_every_voter_reached_once(self, campaign_id: int, phones: list[str]) -> dict[str, int]:
        """The proof: at most one provider call per voter, every call delivered, no voter resent.

        A voter without a call can only be a row its killed worker had taken off the
        not-yet-called list (``campaigns.uncalled``) before its request reached Twilio: the
        worker may have sent it, so it is ``unknown`` — never resent, reported as uncertain.
        """
        calls = self.calls()
        twice = [p for p, n in calls.items() if n > 1]
        assert not twice and set(calls) <= set(phones), f"sent twice: {twice[:10]}"
        assert {r.status for r in self.fake.requests if r.get("To")} == {201}
        sids = {(r.get("To") or "").removeprefix("whatsapp:"): r.sid for r in self.fake.requests}
        with self.rt.db.session() as db:
            rows = db.execute(
                select(Contact.phone, Recipient.status, Message.provider_id, Message.status)
                .join(Contact, Contact.id == Recipient.contact_id)
                .outerjoin(Message, Message.id == Recipient.message_id)
                .where(Recipient.campaign_id == campaign_id)
            ).all()
            by_status = db.execute(
                select(Message.status, Message.error_code, func.count())
                .where(Message.campaign_id == campaign_id)
                .group_by(Message.status, Message.error_code)
            ).all()
        # One message per voter is their attempt that counts; any other is an earlier attempt the
        # provider refused before taking it (a retryable error: kept, failed, on the timeline).
        retried = {code: n for status, code, n in by_status if status == "failed"}
        messages = sum(n for status, _, n in by_status if status != "failed")
        assert len(rows) == len(phones) and messages == len(phones), (messages, retried)
        assert set(retried) <= RETRYABLE_CODES, f"failed attempts that were not retryable: {retried}"
        uncertain = {phone for phone, status, *_ in rows if phone not in calls}
        assert all(status == "unknown" for phone, status, *_ in rows if phone in uncertain)
        reached = [(phone, status, sid, mstatus) for phone, status, sid, mstatus in rows if phone in calls]
        wrong = [r for r in reached if (r[1], r[3], r[2]) != ("delivered", "delivered", sids[r[0]])]
        assert not wrong, f"{len(wrong)} reached voters not delivered: {wrong[:5]} ({self.debug(wrong[:3])})"
        assert self.status(campaign_id) == "completed"
        callbacks = self.fake.callbacks
        assert len(callbacks) == len(calls) and {c.status for c in callbacks} == {204}
        return {"voters": len(phones), "calls": sum(calls.values()), "uncertain": len(uncertain)}


def settings_for(backend: Any, redis_url: str, tmp_path: Path, fake: FakeTwilioMessages, base: str) -> dict[str, str]:
    """The settings of the app and the workers: PostgreSQL, Redis, Twilio pointed at the fake."""
    return {
        "DATABASE_URL": backend.url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "fault-suites",
        "CANVASS_VAR_DIR": str(tmp_path / "var"),
        "CANVASS_PROVIDER": "twilio",
        "CANVASS_ACTIONS": "flows.actions",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_API_BASE": fake.url,
        "TWILIO_TIMEOUT_S": "2",
        "PUBLIC_BASE_URL": base,
    }


@pytest.fixture
def redis_url() -> str:
    """The Redis the rig's processes use (a suite may serve its own)."""
    from tests.conftest import REDIS_URL

    return REDIS_URL


@pytest.fixture
def rig(backend, db, redis, redis_url: str, tmp_path: Path) -> Iterator[Rig]:  # type: ignore[no-untyped-def]
    """The app serving on a free port, the fake Twilio (50–150 ms per answer, one 'delivered' callback)."""
    from web import create_app

    fake = FakeTwilioMessages(
        SID, TOKEN, latency_s=(0.05, 0.15), callbacks=(Callback("delivered"),), callback_gap_s=0.0, callback_retries=5
    ).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = settings_for(backend, redis_url, tmp_path, fake, base)
    app = create_app({**settings, "TESTING": "true"})
    rt: Runtime = app.extensions["canvass"]
    seed(rt, provider="twilio", content_sid=CONTENT_SID)
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes({**os.environ, "PYTHONPATH": str(ROOT), **settings}, logs)
    procs.serve_app(port)
    try:
        wait_for(lambda: _up(base), 30, "the app to serve")
        yield Rig(rt, fake, procs, base)
    finally:
        procs.stop()
        fake.stop()
        close_providers()
        rt.close()
        for log in sorted(logs.iterdir()):
            if b"Traceback" in log.read_bytes():
                print(f"--- {log.name} (has a traceback)\n{log.read_text()[-4000:]}")


def _up(base: str) -> bool:
    import requests

    try:
        return requests.get(f"{base}/healthz", timeout=1).status_code in (200, 503)
    except requests.RequestException:
        return False
