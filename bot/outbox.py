"""Sending: the provider for a sender, queueing sends, and the send job's work.

Replies from flows go on the high-priority queue, so they are never stuck behind a bulk
campaign. A send job claims its message (pending -> sending) before calling the
provider, so a job that runs twice never sends twice; consent is checked at send time.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable

import redis
from rq import Queue
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.channels import REGISTRY, Provider, SendError
from bot.channels.base import Outbound
from bot.db import Database, utcnow
from bot.mediastore import MediaStore
from bot.models import ConsentStatus, Contact, Message, MessageStatusEvent, Sender
from bot.settings import Settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
WHATSAPP_WINDOW = dt.timedelta(hours=24)
# Purposes whose messages are approved templates, which WhatsApp accepts outside the window.
TEMPLATED = frozenset({"campaign", "template"})


class NoProvider(RuntimeError):
    """A sender's provider cannot be used with these settings."""


_providers: dict[tuple[str, ...], Provider] = {}
_providers_lock = threading.Lock()


def provider_for(settings: Settings, sender: Sender) -> Provider:
    """The provider that carries ``sender``'s messages.

    One per account and channel, kept for the process, so that its HTTP connections are
    reused.
    """
    key = (sender.provider, sender.channel, settings.twilio_account_sid or "", settings.twilio_api_base)
    with _providers_lock:
        cached = _providers.get(key)
    if cached is not None:
        return cached
    provider = _make_provider(settings, sender)
    with _providers_lock:
        return _providers.setdefault(key, provider)


def close_providers() -> None:
    """Close the kept providers' HTTP connections (worker shutdown, tests)."""
    with _providers_lock:
        providers = list(_providers.values())
        _providers.clear()
    for provider in providers:
        close = getattr(provider, "close", None)
        if close is not None:
            close()


def _make_provider(settings: Settings, sender: Sender) -> Provider:
    if sender.provider == "sandbox":
        return REGISTRY["sandbox"]()
    if sender.provider == "twilio":
        name = {"sms": "twilio_sms", "whatsapp": "twilio_whatsapp"}.get(sender.channel)
        if name is None or name not in REGISTRY:
            raise NoProvider(f"no Twilio provider for the {sender.channel} channel")
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise NoProvider("sender uses twilio, but TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are not set")
        from bot.channels.twilio_base import TwilioAccount

        return REGISTRY[name](TwilioAccount.from_settings(settings))  # type: ignore[call-arg]
    raise NoProvider(f"unknown provider {sender.provider!r}")


def queue_sends(conn: redis.Redis, message_ids: Iterable[int]) -> None:
    """Queue one send job per message on the high-priority queue (in one round trip)."""
    ids = list(message_ids)
    if not ids:
        return
    queue = Queue("high", connection=conn)
    queue.enqueue_many(
        [Queue.prepare_data("bot.tasks.send_message", args=(mid,), job_id=f"send-{mid}", result_ttl=300) for mid in ids]
    )


def send_message(db: Database, settings: Settings, message_id: int) -> str:
    """Claim and send one message; return what happened (for the job's result and logs)."""
    with db.session() as s:
        claimed = s.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "pending", Message.direction == "out")
            .values(status="sending", attempts=Message.attempts + 1)
        ).rowcount
    if not claimed:
        return "not pending (already sent, or being sent)"
    with db.session() as s:
        message = s.get(Message, message_id)
        assert message is not None
        contact = s.get(Contact, message.contact_id)
        sender = s.get(Sender, message.sender_id) if message.sender_id else None
        assert contact is not None
        if contact.consent == ConsentStatus.OPTED_OUT and message.purpose != "consent":
            return _fail(s, message, "opted_out", "the voter opted out before the message was sent")
        if sender is None or not sender.healthy:
            return _fail(s, message, "no_sender", "no healthy sender for this message")
        if message.channel == "whatsapp" and message.purpose not in TEMPLATED and not _in_window(s, message):
            # WhatsApp allows free-form messages only within 24 h of the voter's last message;
            # outside it only an approved template may be sent (Twilio's error 63016).
            return _fail(s, message, "outside_window", "the voter last wrote more than 24 hours ago; send a template")
        try:
            provider = provider_for(settings, sender)
            sent = provider.send(_outbound(message, contact, sender, settings))
        except NoProvider as exc:
            return _fail(s, message, "no_provider", str(exc))
        except SendError as exc:
            if exc.maybe_taken:
                # Twilio may have taken the message before its answer was lost (a timeout, a
                # reset), and it has no idempotency key: sending again could message the voter
                # twice. The row waits for the status callback (it carries our id) to settle it.
                code = exc.code or "timeout"
                message.status, message.error_code, message.error_message = "unknown", code, exc.message[:500]
                s.add(MessageStatusEvent(message_id=message.id, status="unknown", error_code=code, raw={}))
                return f"unknown ({code}; the status callback will settle it)"
            if exc.retryable and message.attempts < MAX_ATTEMPTS:
                message.status = "pending"
                message.error_code, message.error_message = exc.code, exc.message[:500]
                return f"retry later ({exc.code}: {exc.message})"
            return _fail(s, message, exc.code or "send_error", exc.message)
        now = utcnow()
        message.provider_id = sent.provider_id
        message.status = "delivered" if sent.status == "delivered" else "sent"
        message.sent_at = now
        if message.status == "delivered":
            message.delivered_at = now
        s.add(MessageStatusEvent(message_id=message.id, status=message.status, raw={"provider_status": sent.status}))
        return message.status


def whatsapp_window_closes(s: Session, contact_id: int) -> dt.datetime | None:
    """When WhatsApp's 24-hour window for free-form messages to a voter closes.

    The window opens with each message the voter sends on WhatsApp; None when they
    never wrote. A time in the past means it has closed: only a template may be sent.
    """
    last_in = s.scalar(
        select(func.max(Message.created_at)).where(
            Message.contact_id == contact_id, Message.direction == "in", Message.channel == "whatsapp"
        )
    )
    return last_in + WHATSAPP_WINDOW if last_in is not None else None


def _in_window(s: Session, message: Message) -> bool:
    closes = whatsapp_window_closes(s, message.contact_id)
    return closes is not None and utcnow() < closes


def _outbound(message: Message, contact: Contact, sender: Sender, settings: Settings) -> Outbound:
    callback = f"{settings.public_base_url}/webhooks/twilio/message-status?m={message.id}"
    return Outbound(
        message_id=message.id,
        to=contact.phone,
        sender=sender.address,
        channel=message.channel,
        text=message.body,
        media_urls=tuple(
            MediaStore.absolute(settings.public_base_url, m["url"])
            for m in message.media or []
            if isinstance(m, dict) and m.get("url")
        ),
        choices=tuple((str(c.get("key")), str(c.get("label"))) for c in message.choices or [] if isinstance(c, dict)),
        content_sid=message.content_sid,
        content_variables=message.content_variables if message.content_sid else None,
        messaging_service_sid=sender.messaging_service_sid,
        status_callback=callback,
    )


def _fail(s: Session, message: Message, code: str, text: str) -> str:
    message.status = "failed"
    message.error_code, message.error_message = code, text[:500]
    message.failed_at = utcnow()
    s.add(MessageStatusEvent(message_id=message.id, status="failed", error_code=code, raw={"reason": text}))
    log.info("message %s failed: %s (%s)", message.id, text, code)
    return f"failed: {code}"
