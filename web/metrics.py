"""What ``/metrics`` reports (Prometheus text format), and the webhook counters behind it.

Everything is read at scrape time, from the database and Redis, so every web process
answers the same numbers:

- ``canvass_webhook_requests_total{route, outcome}``: webhook requests, counted in a Redis
  hash by every process (gathered in the process, added at most every second): ``ok``,
  ``duplicate``, ``apology`` (a voice webhook that failed and answered with an apology),
  ``refused`` for a bad signature, ``invalid``, ``error``;
- ``canvass_queue_jobs{queue}``: jobs waiting per RQ queue; ``canvass_workers``;
- ``canvass_campaign_recipients{channel, status}`` and ``canvass_provider_errors{channel,
  code}``: the voters of the campaigns running or launched in the last 24 hours — one
  grouped query through the recipients' campaign index, whatever the history;
- ``canvass_calls{status}``: calls of the last 24 hours;
- ``canvass_handoffs_waiting`` (and ``canvass_handoffs_unassigned``);
- ``canvass_scheduler_up`` and ``canvass_scheduler_heartbeat_age_seconds``;
- ``canvass_contacts{consent}``.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.models import Contact
from bot.queues import QUEUE_NAMES
from campaigns import overview

log = logging.getLogger(__name__)
WEBHOOK_COUNTS = "canvass:metrics:webhooks"
FLUSH_EVERY_S = 1.0
CALLS_SINCE = dt.timedelta(hours=24)
FAILED = ("failed", "undelivered")


def note_outcome(outcome: str) -> None:
    """Say how a webhook request ended when its HTTP status does not (a voice apology is a 200)."""
    g.webhook_outcome = outcome


def _outcome(status: int) -> str:
    if status == 403:
        return "refused"
    if status >= 500:
        return "error"
    if status >= 400:
        return "invalid"
    return "ok"


class _Tally:
    """This process's webhook counts not yet added to Redis.

    A webhook is the hot path (hundreds a second): rather than a Redis round trip per
    request, counts gather here and go to Redis in one pipeline at most every
    ``FLUSH_EVERY_S``, and before this process answers a scrape. A count is at most that
    late in another process's scrape; a process killed outright loses its last second.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: collections.Counter[str] = collections.Counter()
        self.flushed_at = time.monotonic()

    def reset(self) -> None:
        with self.lock:
            self.pending.clear()
            self.flushed_at = time.monotonic()

    def add(self, conn: Redis, key: str) -> None:
        with self.lock:
            self.pending[key] += 1
            due = time.monotonic() - self.flushed_at >= FLUSH_EVERY_S
        if due:
            self.flush(conn)

    def flush(self, conn: Redis) -> None:
        with self.lock:
            counts, self.pending = self.pending, collections.Counter()
            self.flushed_at = time.monotonic()
        if not counts:
            return
        try:
            pipe = conn.pipeline(transaction=False)
            for key, n in counts.items():
                pipe.hincrby(WEBHOOK_COUNTS, key, n)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - a missed count must never fail Twilio's request
            log.warning("%d webhook count(s) not kept (%s): %s", sum(counts.values()), type(exc).__name__, exc)


TALLY = _Tally()


def _count_webhook(response: Response) -> Response:
    if not request.path.startswith("/webhooks/"):
        return response
    route = request.url_rule.rule if request.url_rule is not None else "unknown"
    outcome = g.get("webhook_outcome") or _outcome(response.status_code)
    from web.context import runtime

    TALLY.add(runtime().redis, f"{route}|{outcome}")
    return response


def init_app(app: Flask) -> None:
    """Count every webhook request by route and outcome."""
    # A new app starts counting afresh (tests build many apps in one process, on
    # databases they flush): no count carried over from another app's requests.
    TALLY.reset()
    app.after_request(_count_webhook)


class _WebhookCounts:
    """A collector that reads the shared counters from Redis at scrape time."""

    def __init__(self, conn: Redis) -> None:
        self.conn = conn

    def collect(self) -> Any:
        family = CounterMetricFamily(
            "canvass_webhook_requests", "Webhook requests by route and outcome", labels=["route", "outcome"]
        )
        for key, value in sorted(self.conn.hgetall(WEBHOOK_COUNTS).items()):
            route, _, outcome = key.decode().rpartition("|")
            family.add_metric([route, outcome], int(value))
        yield family


def exposition(db: Session, conn: Redis) -> bytes:
    """Every metric, in Prometheus' text format."""
    from rq import Queue, Worker

    now = utcnow()
    TALLY.flush(conn)  # this process's own counts are exact in its scrape
    registry = CollectorRegistry()
    registry.register(_WebhookCounts(conn))

    contacts = Gauge("canvass_contacts", "Contacts by consent status", ["consent"], registry=registry)
    for consent, n in db.execute(select(Contact.consent, func.count()).group_by(Contact.consent)):
        contacts.labels(consent=consent).set(n)

    queued = Gauge("canvass_queue_jobs", "Jobs waiting per RQ queue", ["queue"], registry=registry)
    for name in QUEUE_NAMES:
        queued.labels(queue=name).set(Queue(name, connection=conn).count)
    Gauge("canvass_workers", "RQ workers registered", registry=registry).set(Worker.count(connection=conn))

    recipients = Gauge(
        "canvass_campaign_recipients",
        "Voters of the campaigns running or launched in the last 24 hours by channel and status",
        ["channel", "status"],
        registry=registry,
    )
    # A gauge, not a counter: campaigns leave the window after a day, so it can go down.
    errors = Gauge(
        "canvass_provider_errors",
        "Failed and undelivered sends of the campaigns running or launched in the last 24 hours, by error code",
        ["channel", "code"],
        registry=registry,
    )
    for channel, status, code, n in overview.sends(db, now):
        recipients.labels(channel=channel, status=status).inc(n)
        if status in FAILED:
            errors.labels(channel=channel, code=code or "none").inc(n)

    calls = Gauge("canvass_calls", "Calls of the last 24 hours by status", ["status"], registry=registry)
    for status, n in overview.calls_by_status(db, now - CALLS_SINCE).items():
        calls.labels(status=status).set(n)

    waiting, unassigned, _ = overview.handoffs_waiting(db)
    Gauge("canvass_handoffs_waiting", "Open handoff cases (voters waiting for a person)", registry=registry).set(
        waiting
    )
    Gauge("canvass_handoffs_unassigned", "Open handoff cases nobody took", registry=registry).set(unassigned)

    from web.health import scheduler_age

    age = scheduler_age(conn)
    Gauge("canvass_scheduler_up", "1 when the scheduler beat in the last minute", registry=registry).set(
        0 if age is None else 1
    )
    if age is not None:
        Gauge(
            "canvass_scheduler_heartbeat_age_seconds", "Seconds since the scheduler's last heartbeat", registry=registry
        ).set(age)
    return generate_latest(registry)
