"""The audit trail: who changed what in the administration pages, and when.

Each change is a row of ``audit_events`` (shown at ``/admin/audit``), written in the same
transaction as the change itself, and a line of the app log (logger ``canvass.audit``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.models import AuditEvent, User

log = logging.getLogger("canvass.audit")


def _plain(value: Any) -> Any:
    """JSON-safe: amounts and times become text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def record(session: Session, actor: User, action: str, target: str, **detail: Any) -> AuditEvent:
    """Note ``action`` on ``target`` by ``actor`` (committed with the change it describes).

    ``detail`` holds what changed: a pair ``[before, after]`` for a changed value (the
    trail shows it as "before → after"), a plain value otherwise.
    """
    event = AuditEvent(actor_id=actor.id, actor_email=actor.email, action=action, target=target, detail=_plain(detail))
    session.add(event)
    log.info("audit: %s %s by %s %s", action, target, actor.email, event.detail)
    return event


def recent(session: Session, *, limit: int = 200, action: str | None = None) -> list[AuditEvent]:
    """The newest events first; ``action`` filters by its prefix (``user``, ``sender.health``)."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action))
    return list(session.scalars(stmt))
