"""What ``/metrics`` reports (Prometheus text format), and the webhook counters behind it.

Everything is read at scrape time, from the database and Redis, so every web process
answers the same numbers:

- ``canvass_webhook_requests_total{route, outcome}``: webhook requests, counted in a Redis
  hash by every process as they are answered (``ok``, ``duplicate``, ``apology`` — a voice
  webhook that failed and answered with an apology —, ``refused`` for a bad signature,
  ``invalid``, ``error``);
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

import datetime as dt
import logging
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


def _count_webhook(response: Response) -> Response:
    if not request.path.startswith("/webhooks/"):
        return response
    route = request.url_rule.rule if request.url_rule is not None else "unknown"
    outcome = g.get("webhook_outcome") or _outcome(response.status_code)
    try:
        from web.context import runtime

        runtime().redis.hincrby(WEBHOOK_COUNTS, f"{route}|{outcome}", 1)
    except Exception as exc:  # noqa: BLE001 - a missed count must never fail Twilio's request
        log.warning("webhook count not kept (%s): %s", type(exc).__name__, exc)
    return response


def init_app(app: Flask) -> None:
    """Count every webhook request by route and outcome."""
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
