"""The inbound queue: voters' messages as the webhook stored them, waiting to be routed.

The webhook answers Twilio as soon as a message is stored here; a worker then routes
it (contact, conversation, replies) and marks the row routed. The database, not Redis,
is the truth: a row whose wake-up was lost (Redis flushed) is found again by the
scheduler's sweep.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base, UTCDateTime
from bot.models.contacts import BigId

_WAITING = text("routed_at IS NULL")


class QueuedInbound(Base):
    """One inbound message, stored by the webhook, routed once by a worker."""

    __tablename__ = "inbound_queue"
    __table_args__ = (
        # Both indexes cover only the rows still waiting, so they stay small however
        # many routed rows the table keeps until the purge.
        Index("ix_inbound_queue_waiting", "id", postgresql_where=_WAITING, sqlite_where=_WAITING),
        Index("ix_inbound_queue_phone_waiting", "from_phone", "id", postgresql_where=_WAITING, sqlite_where=_WAITING),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The provider's message id (Twilio's MessageSid): a retried delivery is stored once.
    provider_id: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(16))  # twilio, sandbox
    channel: Mapped[str] = mapped_column(String(16))
    from_phone: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    media: Mapped[list[Any]] = mapped_column(JSON)  # [[url, content type], ...]
    profile_name: Mapped[str | None] = mapped_column(String(200))
    button_payload: Mapped[str | None] = mapped_column(String(256))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Set in the transaction that routes the row, so a row is routed exactly once.
    routed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Failed routing attempts; after a few the row is given up (outcome "failed").
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(24))  # the router's outcome (started, resumed, ...)
    message_id: Mapped[int | None] = mapped_column(BigId)  # the messages row it became
