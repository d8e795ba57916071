"""Logging: one line per event, as text or as JSON (``CANVASS_LOG_FORMAT``).

Each line carries the event's fields: a web request's id, route, status and duration
(``web.requestlog``), a job's id, queue, campaign and batch (:class:`JobContext`, read
from RQ's current job). Text lines end with ``key=value`` pairs; JSON lines are one
object per line, for a log shipper. Configured once, when a process starts.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any

FORMATS = ("text", "json")
# Extra fields a log record may carry, in the order a text line shows them.
FIELDS = (
    "request_id",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "user",
    "job_id",
    "queue",
    "campaign",
    "batch",
    "call",
    "message",
)
# A job's parameters that name what it works on -> the field they fill.
JOB_PARAMS = {"campaign_id": "campaign", "batch": "batch", "call_id": "call", "message_id": "message"}
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that say too much at INFO for a production log.
QUIET = ("alembic", "rasa_sdk", "twilio.http_client")


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The extra fields set on ``record`` (None values left out)."""
    return {name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None}


class TextFormatter(logging.Formatter):
    """``2026-11-29 10:00:00,123 INFO canvass.request: GET /campaigns 200 route=/campaigns status=200 ...``."""

    def __init__(self) -> None:
        super().__init__(TEXT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The classic line, then the record's fields as key=value."""
        line = super().formatMessage(record)
        extra = " ".join(f"{k}={v}" for k, v in fields(record).items())
        return f"{line} {extra}" if extra else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the fields, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **fields(record),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class JobContext(logging.Filter):
    """Add the RQ job being run (id, queue, campaign, batch, ...) to every record logged during it."""

    def __init__(self) -> None:
        super().__init__()
        self._params: dict[str, list[str]] = {}

    def _names(self, job: Any) -> list[str]:
        name = job.func_name
        if name not in self._params:
            try:
                self._params[name] = list(inspect.signature(job.func).parameters)
            except (ValueError, TypeError, AttributeError, ImportError):
                self._params[name] = []
        return self._params[name]

    def filter(self, record: logging.LogRecord) -> bool:
        """Always let the record through, with the job's fields when a job runs."""
        from rq import get_current_job

        try:
            job = get_current_job()
        except Exception:  # noqa: BLE001 - no job context is not an error
            job = None
        if job is None or getattr(record, "job_id", None) is not None:
            return True
        record.job_id, record.queue = job.id, job.origin
        values = dict(zip(self._names(job), job.args or (), strict=False)) | dict(job.kwargs or {})
        for param, field in JOB_PARAMS.items():
            if param in values and getattr(record, field, None) is None:
                setattr(record, field, values[param])
        return True


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of ``fmt`` (``text`` or ``json``)."""
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(fmt: str = "text", *, level: int = logging.INFO, filters: Iterable[logging.Filter] = ()) -> None:
    """Send the process's log to stderr as ``fmt``, one line per event, with the given context filters.

    A root logger that already has handlers of someone else's (a test runner, an embedding
    server) keeps them; canvass's own handler is added once and reconfigured on later calls.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_canvass", False)]
    if not ours and not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler._canvass = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        ours = [handler]
    for handler in ours:
        handler.setFormatter(formatter(fmt))
        for flt in [JobContext(), *filters]:
            if not any(type(existing) is type(flt) for existing in handler.filters):
                handler.addFilter(flt)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
