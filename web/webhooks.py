"""Twilio webhooks: inbound messages and delivery statuses, signature-checked first.

The signature is computed over ``PUBLIC_BASE_URL`` + the raw path and query string as
the client sent them (so it holds behind a TLS proxy and with encoded queries) and the
form; a request that fails the check gets 403 and nothing is stored or queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request
from sqlalchemy import select

from bot.channels import REGISTRY
from bot.channels.base import ParseError
from bot.channels.twilio_base import TwilioAccount
from bot.conversations import accept
from bot.db import utcnow
from bot.models import Message, MessageStatusEvent, advances
from bot.runtime import Runtime
from campaigns import tracking
from web.auth.access import csrf, public
from web.context import runtime
from web.errors import BadInput, Forbidden
from web.metrics import note_outcome

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)
csrf.exempt(bp)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
TIMESTAMPS = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "read": "read_at",
    "failed": "failed_at",
    "undelivered": "failed_at",
}


def public_url() -> str:
    """The URL Twilio signed: our public base + the raw path and query of this request."""
    raw = raw_target(request.environ)
    if not raw:
        raw = quote(request.path, safe="/%:@!$&'()*+,;=-._~")
        if request.query_string:
            raw += "?" + request.query_string.decode("latin-1")
    return runtime().settings.public_base_url + raw


def raw_target(environ: Mapping[str, Any]) -> str | None:
    """The path and query exactly as the client sent them, when the server tells (gunicorn, Werkzeug)."""
    return environ.get("RAW_URI") or environ.get("REQUEST_URI")


def messaging_provider(form: Mapping[str, str], rt: Runtime | None = None) -> Any:
    """The process's Twilio provider for a message webhook's form: WhatsApp or SMS."""
    whatsapp = form.get("From", "").startswith("whatsapp:") or form.get("To", "").startswith("whatsapp:")
    name = "twilio_whatsapp" if whatsapp else "twilio_sms"
    return kept_provider(name, REGISTRY[name], rt)


def kept_provider(name: str, make: Callable[[TwilioAccount], Any], rt: Runtime | None = None) -> Any:
    """The process's provider ``name`` for checking webhooks, made once from the Twilio account.

    ``rt`` is this app's runtime (default: the current app's). Without the auth token
    nothing can be verified: refuse (fail closed).
    """
    rt = rt or runtime()
    settings = rt.settings
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        raise Forbidden("Twilio credentials are not configured; webhooks cannot be verified.")
    key = f"provider:{name}"
    if key not in rt.services:
        rt.services[key] = make(TwilioAccount.from_settings(settings))
    return rt.services[key]


def _verified_parse(kind: str) -> Any:
    """Check the signature first, then parse the form with the provider's ``parse_<kind>``."""
    form = request.form.to_dict()
    return verified_parse(messaging_provider(form), form, kind)


def verified_parse(provider: Any, form: dict[str, str], kind: str) -> Any:
    """Check this request's signature with ``provider``, then parse ``form`` with its ``parse_<kind>``.

    A bad or missing signature is a 403 (nothing is stored); a form the provider cannot
    read is a 400 naming the field.
    """
    if not provider.verify_request(public_url(), form, request.headers.get("X-Twilio-Signature")):
        log.warning("webhook %s: bad or missing signature (url %s)", request.path, public_url())
        raise Forbidden("The request signature does not match.")
    try:
        return getattr(provider, f"parse_{kind}")(form)
    except ParseError as exc:
        raise BadInput(str(exc), field=exc.field) from None


@bp.post("/webhooks/twilio/messages")
@public
def inbound() -> Response:
    """An SMS or WhatsApp message from a voter: stored, answered, then routed by a worker.

    STOP / START / HELP are applied before the answer (consent never waits on a queue);
    everything else waits in the inbound queue for ``bot.conversations.drain_inbound``.
    The common case is answered below Flask, the same way (``web.inbound_lane``); this
    view answers the rest: refusals, bad forms, consent keywords, errors.
    """
    message = _verified_parse("inbound")
    # Twilio retries when we are slow: the first delivery of a MessageSid wins, in every
    # process (its row in the inbound queue is unique). Twilio only posts for numbers
    # of our account: an unknown `To` becomes a sender.
    if accept(runtime(), message, provider="twilio") == "duplicate":
        note_outcome("duplicate")
    return _twiml()


@bp.post("/webhooks/twilio/message-status")
@public
def message_status() -> Response:
    """A delivery status callback; statuses only move forward, every callback is kept."""
    update = _verified_parse("status")
    # Read, then write: on SQLite the write lock is taken first, so that a callback that
    # lands while a batch stores its sends waits its turn instead of failing ("database is
    # locked"); Twilio does not post a status callback again.
    with runtime().db.session(write=True) as db:
        message = None
        our_id = request.args.get("m", "")
        if our_id.isdigit():
            message = db.get(Message, int(our_id), with_for_update=True)
        if message is None:
            message = db.scalar(select(Message).where(Message.provider_id == update.provider_id).with_for_update())
        if message is None:
            log.warning("status %s for unknown message %s", update.status, update.provider_id)
            return Response(status=204)
        if message.provider_id is None:
            message.provider_id = update.provider_id  # a send whose answer was lost ("unknown")
        moved = advances(message.status, update.status)
        if moved:
            message.status = update.status
            column = TIMESTAMPS.get(update.status)
            if column and getattr(message, column) is None:
                setattr(message, column, utcnow())
            if update.status in ("failed", "undelivered"):
                message.error_code, message.error_message = update.error_code, update.error_message
            else:
                # It went out after all: the "timeout" or "worker_lost" of an unknown send is void.
                message.error_code = message.error_message = None
        if message.recipient_id is not None:
            # A campaign's opening message: its recipient row follows (also when this callback
            # only settles an "unknown" send or fills a timestamp).
            tracking.follow(db, message)
        db.add(
            MessageStatusEvent(
                message_id=message.id,
                status=update.status,
                applied=moved,
                error_code=update.error_code,
                raw=dict(update.raw),
            )
        )
    return Response(status=204)


def _twiml() -> Response:
    return Response(EMPTY_TWIML, mimetype="text/xml")
