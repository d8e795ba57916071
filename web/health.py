"""/healthz and /metrics: open to monitoring, no login."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select, text

from bot.models import Contact
from bot.queues import QUEUE_NAMES, SCHEDULER_HEARTBEAT
from web.auth.access import public
from web.context import db_session, runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> Response:
    """Check the database and Redis; 503 when either fails."""
    checks: dict[str, str] = {}
    try:
        db_session().execute(text("SELECT 1"))
        checks["db"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is "not healthy", reported
        checks["db"] = f"error: {type(exc).__name__}"
    try:
        runtime().redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    try:
        beat = runtime().redis.get(SCHEDULER_HEARTBEAT)
        checks["scheduler"] = f"seen {time.time() - float(beat):.0f}s ago" if beat else "not running"
    except Exception:  # noqa: BLE001 - already reported as redis
        checks["scheduler"] = "unknown"
    response = jsonify({"status": "ok" if healthy else "unhealthy", **checks})
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
@public
def metrics() -> Response:
    """Prometheus metrics, read from the database and Redis at scrape time.

    Reading at scrape time means every web process answers the same numbers.
    """
    registry = CollectorRegistry()
    contacts = Gauge("canvass_contacts", "Contacts by consent status", ["consent"], registry=registry)
    for consent, n in db_session().execute(select(Contact.consent, func.count()).group_by(Contact.consent)):
        contacts.labels(consent=consent).set(n)
    queued = Gauge("canvass_queue_jobs", "Jobs waiting per RQ queue", ["queue"], registry=registry)
    from rq import Queue

    conn = runtime().redis
    for name in QUEUE_NAMES:
        queued.labels(queue=name).set(Queue(name, connection=conn).count)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
