"""Saved segments: a named audience definition that pages and campaign specs refer to."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base, UTCDateTime, utcnow


class Segment(Base):
    """A segment definition (the JSON ``bot.segments`` compiles) kept under a name.

    A campaign naming it (``audience: {segment: NAME}``) uses its definition as it is at
    launch, when the campaign's recipients are written.
    """

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    spec: Mapped[Any] = mapped_column(JSON, default=dict)
    # Who saved it last (an email; the users table belongs to the web layer).
    updated_by: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
