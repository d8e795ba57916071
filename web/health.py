"""/healthz and /metrics: open to monitoring, no login."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis import Redis
from sqlalchemy import text

from bot.queues import SCHEDULER_HEARTBEAT
from web.auth.access import public
from web.context import db_session, runtime

bp = Blueprint("health", __name__)


def scheduler_age(conn: Redis) -> float | None:
    """Seconds since the scheduler's last heartbeat; None when it was not seen for a minute."""
    beat = conn.get(SCHEDULER_HEARTBEAT)
    return max(time.time() - float(beat), 0.0) if beat else None


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
        age = scheduler_age(runtime().redis)
        checks["scheduler"] = f"seen {age:.0f}s ago" if age is not None else "not running"
    except Exception:  # noqa: BLE001 - already reported as redis
        checks["scheduler"] = "unknown"
    response = jsonify({"status": "ok" if healthy else "unhealthy", **checks})
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
@public
def metrics() -> Response:
    """Prometheus metrics, read from the database and Redis at scrape time (``web.metrics``).

    Reading at scrape time means every web process answers the same numbers.
    """
    from web.metrics import exposition

    return Response(exposition(db_session(), runtime().redis), mimetype=CONTENT_TYPE_LATEST)
