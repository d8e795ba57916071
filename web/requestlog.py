"""One log line per web request: id, method, route, status and duration.

The request id is taken from an ``X-Request-Id`` header when a proxy sends a sane one,
else made here; it is echoed in the answer's ``X-Request-Id`` and carried by every line
logged while the request runs (:class:`RequestContext`), so one request's lines can be
found together. Static files, health checks and scrapes are logged at DEBUG.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, has_request_context, request

log = logging.getLogger("canvass.request")
INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
QUIET_ENDPOINTS = ("static", "health.healthz", "health.metrics")


class RequestContext(logging.Filter):
    """Add the request id (and route) to records logged while a request runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always let the record through, with the request's fields when there is one."""
        if has_request_context() and getattr(record, "request_id", None) is None:
            record.request_id = g.get("request_id")
            if getattr(record, "route", None) is None and request.url_rule is not None:
                record.route = request.url_rule.rule
        return True


def request_id(incoming: str) -> str:
    """The request's id: a proxy's sane ``X-Request-Id`` (``incoming``), else a new one."""
    return incoming if INCOMING_ID.match(incoming) else uuid.uuid4().hex[:16]


def write(
    method: str,
    path: str,
    route: str | None,
    status: int,
    started: float,
    rid: str,
    *,
    user: int | None = None,
    quiet: bool = False,
) -> None:
    """Log one request's line (at DEBUG when ``quiet``); ``started``: its ``time.perf_counter()``."""
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    level = logging.DEBUG if quiet else logging.INFO
    log.log(
        level,
        "%s %s %s %.1fms",
        method,
        path,
        status,
        duration_ms,
        extra={
            "request_id": rid,
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "user": user,
        },
    )


def _start() -> None:
    g.request_id = request_id(request.headers.get("X-Request-Id", ""))
    g.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    if started is None:
        return response
    response.headers["X-Request-Id"] = g.request_id
    user = g.get("user")
    route = request.url_rule.rule if request.url_rule is not None else None
    quiet = request.endpoint in QUIET_ENDPOINTS
    write(
        request.method,
        request.path,
        route,
        response.status_code,
        started,
        g.request_id,
        user=user and user.id,
        quiet=quiet,
    )
    return response


def init_app(app: Flask) -> None:
    """Time and log every request."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
