"""Sending: the provider for a sender, queueing sends, and the send job's work.

Replies from flows go on the high-priority queue, so they are never stuck behind a bulk
campaign. A send job claims its message (pending -> sending) before calling the
provider, so a job that runs twice never sends twice; consent is checked at send time.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import logging
import threading
from collections.abc import Iterable

import redis
from rq import Queue
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.channels import REGISTRY, Provider, SendError
from bot.channels.base import Outbound, Sent
from bot.db import Database, utcnow
from bot.mediastore import MediaStore
from bot.models import ConsentStatus, Contact, Message, MessageStatusEvent, Sender
from bot.settings import Settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
NOT_PENDING = "not pending (already sent, or being sent)"
# Provider calls in flight in one send job (different voters: one voter's go in order).
SENDS_IN_FLIGHT = 16
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
    """Queue the sends of these messages on the high-priority queue: one job, one round trip.

    A job per message cost a worker ~8 ms of CPU per reply, RQ's own work on the job
    (~3 ms) and two transactions of the ORM; several messages (a drain batch's replies)
    go in one ``send_messages`` job, id ``send-<first id>-<count>``: ~0.3 ms a reply.
    """
    ids = list(message_ids)
    if not ids:
        return
    if len(ids) == 1:
        job = Queue.prepare_data("bot.tasks.send_message", args=(ids[0],), job_id=f"send-{ids[0]}", result_ttl=300)
    else:
        job = Queue.prepare_data(
            "bot.tasks.send_messages", args=(ids,), job_id=f"send-{ids[0]}-{len(ids)}", result_ttl=300
        )
    Queue("high", connection=conn).enqueue_many([job])


def send_message(db: Database, settings: Settings, message_id: int) -> str:
    """Claim and send one message; return what happened (for the job's result and logs)."""
    return send_messages(db, settings, [message_id])[message_id]


def send_messages(db: Database, settings: Settings, message_ids: Iterable[int]) -> dict[int, str]:
    """Claim and send these messages; return what happened to each (for the job's result and logs).

    One claim for all (pending -> sending), so a job that runs twice never sends twice;
    then one transaction checks them at send time (consent, sender, WhatsApp window)
    and stores what the provider said. Provider calls run side by side for different
    voters, one after the other, in order, for the same voter.
    """
    ids = list(dict.fromkeys(message_ids))
    results = dict.fromkeys(ids, NOT_PENDING)
    table = Message.__table__
    with db.session() as s:
        claimed = s.scalars(
            update(table)
            .where(table.c.id.in_(ids), table.c.status == "pending", table.c.direction == "out")
            .values(status="sending", attempts=table.c.attempts + 1)
            .returning(table.c.id)
        ).all()
    if not claimed:
        return results
    with db.session() as s:
        messages = s.scalars(select(Message).where(Message.id.in_(claimed)).order_by(Message.id)).all()
        contacts = {c.id: c for c in s.scalars(select(Contact).where(Contact.id.in_({m.contact_id for m in messages})))}
        sender_ids = {m.sender_id for m in messages if m.sender_id}
        senders = {x.id: x for x in s.scalars(select(Sender).where(Sender.id.in_(sender_ids)))} if sender_ids else {}
        free_form = {m.contact_id for m in messages if m.channel == "whatsapp" and m.purpose not in TEMPLATED}
        last_in = _last_whatsapp_in(s, free_form)
        calls: dict[int, list[tuple[Message, Provider, Outbound]]] = {}  # by voter, in order
        for message in messages:
            contact, sender = contacts[message.contact_id], senders.get(message.sender_id or 0)
            if contact.consent == ConsentStatus.OPTED_OUT and message.purpose != "consent":
                results[message.id] = _fail(s, message, "opted_out", "the voter opted out before the message was sent")
            elif sender is None or not sender.healthy:
                results[message.id] = _fail(s, message, "no_sender", "no healthy sender for this message")
            elif contact.id in free_form and not _in_window(last_in.get(contact.id)):
                # WhatsApp allows free-form messages only within 24 h of the voter's last
                # message; outside it only an approved template may be sent (Twilio's 63016).
                reason = "the voter last wrote more than 24 hours ago; send a template"
                results[message.id] = _fail(s, message, "outside_window", reason)
            else:
                try:
                    provider = provider_for(settings, sender)
                except NoProvider as exc:
                    results[message.id] = _fail(s, message, "no_provider", str(exc))
                    continue
                outbound = _outbound(message, contact, sender, settings)
                calls.setdefault(contact.id, []).append((message, provider, outbound))
        for message, answer in _call_providers(list(calls.values())):
            results[message.id] = _store(s, message, answer)
    return results


def _call_providers(voters: list[list[tuple[Message, Provider, Outbound]]]) -> list[tuple[Message, Sent | SendError]]:
    """Each voter's sends in order; different voters' side by side (a provider call takes 100-300 ms)."""
    if len(voters) <= 1:
        return [answer for calls in voters for answer in _call_in_order(calls)]
    with cf.ThreadPoolExecutor(max_workers=min(SENDS_IN_FLIGHT, len(voters)), thread_name_prefix="send") as pool:
        return [answer for answers in pool.map(_call_in_order, voters) for answer in answers]


def _call_in_order(calls: list[tuple[Message, Provider, Outbound]]) -> list[tuple[Message, Sent | SendError]]:
    answers: list[tuple[Message, Sent | SendError]] = []
    for message, provider, outbound in calls:
        try:
            answers.append((message, provider.send(outbound)))
        except SendError as exc:
            answers.append((message, exc))
        except Exception as exc:  # the other voters' answers must still be stored
            # A fault in the provider code, not an answer from the provider: whether the
            # message left is not known, so it is never sent blindly again (``unknown``).
            log.exception("message %s: the provider failed", message.id)
            answers.append(
                (
                    message,
                    SendError(f"{type(exc).__name__}: {exc}", retryable=False, code="provider_fault", maybe_taken=True),
                )
            )
    return answers


def _store(s: Session, message: Message, answer: Sent | SendError) -> str:
    """Store the provider's answer on the claimed ``message``; return what happened."""
    if isinstance(answer, SendError):
        exc = answer
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
    message.provider_id = answer.provider_id
    message.status = "delivered" if answer.status == "delivered" else "sent"
    message.sent_at = now
    if message.status == "delivered":
        message.delivered_at = now
    s.add(MessageStatusEvent(message_id=message.id, status=message.status, raw={"provider_status": answer.status}))
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


def _last_whatsapp_in(s: Session, contact_ids: set[int]) -> dict[int, dt.datetime]:
    """When each of these voters last wrote on WhatsApp (voters who never did are left out)."""
    if not contact_ids:
        return {}
    rows = s.execute(
        select(Message.contact_id, func.max(Message.created_at))
        .where(Message.contact_id.in_(contact_ids), Message.direction == "in", Message.channel == "whatsapp")
        .group_by(Message.contact_id)
    )
    return dict(rows.tuples().all())


def _in_window(last_in: dt.datetime | None) -> bool:
    return last_in is not None and utcnow() < last_in + WHATSAPP_WINDOW


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
