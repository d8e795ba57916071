"""A campaign message's delivery status, followed onto its recipient row.

The status callback moves the message (``web.webhooks``); this copies the move onto the
recipient, forward only, with its timestamps and error, so progress counts and the
export read one table.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.models import Message, advances
from campaigns.models import Recipient

STAMPS = ("sent_at", "delivered_at", "read_at", "failed_at")


def follow(db: Session, message: Message) -> bool:
    """Copy ``message``'s status onto its recipient; True when the recipient moved."""
    if message.recipient_id is None:
        return False
    recipient = db.get(Recipient, message.recipient_id, with_for_update=True)
    # Only the recipient's current attempt speaks for it (a fallback moved it to another channel).
    if recipient is None or recipient.message_id != message.id or recipient.channel != message.channel:
        return False
    moved = advances(recipient.status, message.status)
    if moved:
        recipient.status = message.status
        if message.status in ("failed", "undelivered"):
            recipient.error_code, recipient.error_msg = message.error_code, message.error_message
        else:
            recipient.error_code = recipient.error_msg = None  # an unknown send's error is void once settled
    for column in STAMPS:
        if getattr(message, column) is not None and getattr(recipient, column) is None:
            setattr(recipient, column, getattr(message, column))
    return moved
