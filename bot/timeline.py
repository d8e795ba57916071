"""A voter's timeline: messages with their statuses, funnel steps, consent, handoff cases."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import ConsentEvent, FunnelEvent, HandoffCase, Message


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _newest(db: Session, model: Any, contact_id: int, limit: int) -> Any:
    """The contact's newest ``limit`` rows of a table."""
    return db.scalars(select(model).where(model.contact_id == contact_id).order_by(model.id.desc()).limit(limit))


def timeline(db: Session, contact_id: int, *, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` entries of each kind, merged oldest first."""
    entries: list[dict[str, Any]] = []
    for m in _newest(db, Message, contact_id, limit):
        entries.append(
            {
                "_t": m.created_at,
                "kind": "message",
                "at": _iso(m.created_at),
                "id": m.id,
                "direction": m.direction,
                "channel": m.channel,
                "body": m.body,
                "status": m.status,
                "error_code": m.error_code,
                "node": m.node,
                "purpose": m.purpose,
                "campaign_id": m.campaign_id,
                "sent_at": _iso(m.sent_at),
                "delivered_at": _iso(m.delivered_at),
                "read_at": _iso(m.read_at),
            }
        )
    for f in _newest(db, FunnelEvent, contact_id, limit):
        entries.append(
            {"_t": f.reached_at, "kind": "funnel", "at": _iso(f.reached_at), "flow": f.flow_name, "step": f.step}
        )
    for c in _newest(db, ConsentEvent, contact_id, limit):
        entries.append(
            {
                "_t": c.created_at,
                "kind": "consent",
                "at": _iso(c.created_at),
                "status": c.status,
                "channel": c.channel,
                "source": c.source,
            }
        )
    for h in _newest(db, HandoffCase, contact_id, limit):
        entries.append(
            {
                "_t": h.opened_at,
                "kind": "handoff",
                "at": _iso(h.opened_at),
                "id": h.id,
                "status": h.status,
                "note": h.note,
                "reason": h.reason,
                "closed_at": _iso(h.closed_at),
            }
        )
    # Microsecond times decide the order (the shown times are to the second).
    entries.sort(key=lambda e: (e.pop("_t"), e.get("id") or 0))
    return entries
