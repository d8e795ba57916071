"""Retention: message bodies are kept for a limited time; what happened is kept for good.

Bodies and media links older than ``CANVASS_RETENTION_DAYS`` (30 by default) are erased;
statuses, timestamps, funnel steps and answers stay, so reports and exports still add up.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, bindparam, update

from bot.db import Database, utcnow
from bot.models import Message


def purge_bodies(db: Database, days: int, *, now: dt.datetime | None = None) -> int:
    """Erase message bodies older than ``days``; return how many messages were purged."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    with db.session() as s:
        result = s.execute(
            update(Message)
            .where(Message.created_at < cutoff, Message.body.is_not(None))
            .values(body=None, media=bindparam("empty", [], type_=JSON))
        )
        return result.rowcount or 0
