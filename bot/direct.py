"""Direct sends: one message to one voter (the "send from the voter's page" case).

They take the same path as every reply: a pending message row, the high-priority queue,
the send job (which checks consent and WhatsApp's 24-hour window at send time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.models import ConsentStatus, Contact, Message, Sender
from bot.outbox import whatsapp_window_closes

CHANNELS = ("whatsapp", "sms")
OUTSIDE_WINDOW = (
    "the voter has not written on WhatsApp in the last 24 hours, so WhatsApp accepts only an"
    " approved template: choose one"
)


@dataclasses.dataclass(frozen=True)
class ApprovedTemplate:
    """An approved template, as a person sends it: Twilio's Content API id and the values.

    ``content_sid`` is None in the sandbox (nothing to ask WhatsApp); the rendered text
    is what the sandbox delivers.
    """

    content_sid: str | None
    variables: Mapping[str, str]


class DirectSendError(ValueError):
    """The send cannot be queued; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def direct_message(
    db: Session, contact_id: int, text: str, channel: str, *, template: ApprovedTemplate | None = None
) -> Message:
    """Queue-ready message to a contact on a channel, from its first healthy sender.

    Free-form WhatsApp text is refused outside the 24-hour window; a ``template`` (its
    rendered ``text``) is not.
    """
    contact = db.get(Contact, contact_id)
    if contact is None:
        raise LookupError(f"no contact {contact_id}")
    if channel not in CHANNELS:
        raise DirectSendError("channel", f"must be one of {', '.join(CHANNELS)}, got {channel!r}")
    text = checked_text(text)
    if contact.consent == ConsentStatus.OPTED_OUT:
        raise DirectSendError("contact", "the voter opted out; nothing is sent to them")
    sender_id = db.scalar(
        select(Sender.id).where(Sender.channel == channel, Sender.healthy.is_(True)).order_by(Sender.id)
    )
    if sender_id is None:
        raise DirectSendError("channel", f"no healthy {channel} sender (canvass senders add ... --channel {channel})")
    if channel == "whatsapp" and template is None:
        check_window(db, contact.id)
    return queued_message(db, contact.id, sender_id, channel, text, template=template)


def check_window(db: Session, contact_id: int) -> None:
    """Raise ``DirectSendError`` naming ``text`` when WhatsApp's 24-hour window is closed."""
    closes = whatsapp_window_closes(db, contact_id)
    if closes is None or closes <= utcnow():
        raise DirectSendError("text", OUTSIDE_WINDOW)


def checked_text(text: str) -> str:
    """A person's message text, stripped; raise ``DirectSendError`` naming ``text``."""
    text = (text or "").strip()
    if not text:
        raise DirectSendError("text", "must not be empty")
    if len(text) > 4096:
        raise DirectSendError("text", "must be at most 4096 characters")
    return text


def queued_message(
    db: Session,
    contact_id: int,
    sender_id: int | None,
    channel: str,
    text: str,
    *,
    session_id: int | None = None,
    template: ApprovedTemplate | None = None,
) -> Message:
    """A pending message written by a person (not by a flow), ready for the send queue.

    With ``template``, ``text`` is the template rendered for the voter and the message
    may go out on WhatsApp outside the 24-hour window.
    """
    message = Message(
        contact_id=contact_id,
        session_id=session_id,
        sender_id=sender_id,
        direction="out",
        purpose="template" if template else "direct",
        channel=channel,
        body=text,
        content_sid=template.content_sid if template else None,
        content_variables=dict(template.variables) if template and template.content_sid else None,
        status="pending",
        created_at=utcnow(),
    )
    db.add(message)
    db.flush()
    return message
