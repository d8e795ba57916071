"""Tables of the organisation's send policy: windows and blackouts every campaign obeys.

They add to the deployment's (``CANVASS_SEND_WINDOW``, ``CANVASS_BLACKOUTS``) and to each
campaign's own; an admin edits them in the console (``bot.sendpolicy``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base, UTCDateTime, utcnow


class PolicyWindow(Base):
    """A send window of the whole organisation: a preset, or start and end in a zone."""

    __tablename__ = "policy_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    preset: Mapped[str | None] = mapped_column(String(32))  # us_tcpa, india_election, ...
    start: Mapped[str | None] = mapped_column(String(5))  # HH:MM
    end: Mapped[str | None] = mapped_column(String(5))
    timezone: Mapped[str | None] = mapped_column(String(64))  # None: the voter's own zone
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PolicyBlackout(Base):
    """A period of silence for everyone, or for the voters with one valued tag."""

    __tablename__ = "policy_blackouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    tag: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
