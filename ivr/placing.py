"""Placing calls: the voice provider of a sender, and one call placed on its own (a call-back).

Campaign calls are placed by the campaign's batch sender (``campaigns.call_dispatch``),
which uses ``provider_for`` from here. A call-back (a missed-call line configured to call
the voter back) is a single call: ``place_callback`` runs as an RQ job
(``ivr.tasks.call_back``), claims the call in Redis so that a job run twice never dials
twice, and stores the SID Twilio gave it (or the failure).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from bot.channels import SendError
from bot.db import Database, utcnow
from bot.models import Contact, Sender
from bot.outbox import NoProvider
from bot.settings import Settings
from ivr.links import CallLinks
from ivr.models import Call
from ivr.providers import REGISTRY, CallRequest, VoiceProvider

log = logging.getLogger(__name__)
CLAIM_TTL_S = 24 * 3600
RING_TIMEOUT_S = 30
_providers: dict[tuple[str, ...], VoiceProvider] = {}
_lock = threading.Lock()


def provider_for(settings: Settings, sender: Sender) -> VoiceProvider:
    """The voice provider that places ``sender``'s calls (one per account, kept for the process)."""
    key = (sender.provider, settings.twilio_account_sid or "", settings.twilio_api_base)
    with _lock:
        if key in _providers:
            return _providers[key]
    if sender.provider == "sandbox":
        provider: VoiceProvider = REGISTRY["sandbox"](settings.secret_key)  # type: ignore[call-arg]
    elif sender.provider == "twilio":
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise NoProvider("sender uses twilio, but TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are not set")
        from bot.channels.twilio_base import TwilioAccount

        provider = REGISTRY["twilio"](TwilioAccount.from_settings(settings))  # type: ignore[call-arg]
    else:
        raise NoProvider(f"unknown provider {sender.provider!r}")
    with _lock:
        return _providers.setdefault(key, provider)


def close_providers() -> None:
    """Forget the kept providers, closing their connections (worker shutdown, tests)."""
    with _lock:
        kept = list(_providers.values())
        _providers.clear()
    for provider in kept:
        provider.close()


def place_callback(db: Database, settings: Settings, conn: Any, call_id: int) -> str:
    """Place call ``call_id`` (queued, not placed yet); return what happened.

    ``placed``, ``already`` (another run claimed it), ``gone`` (no such call, or it moved
    on), ``failed`` (the provider refused: the call is ``failed`` with its code).
    """
    if not conn.set(f"canvass:call-placing:{call_id}", "1", nx=True, ex=CLAIM_TTL_S):
        return "already"
    with db.session() as s:
        call = s.get(Call, call_id)
        if call is None or call.sid is not None or call.status != "queued":
            return "gone"
        sender = s.get(Sender, call.sender_id) if call.sender_id else None
        contact = s.get(Contact, call.contact_id)
        if sender is None or contact is None:
            call.status, call.error_message, call.ended_at = "failed", "no voice sender to call from", utcnow()
            return "failed"
        to, from_ = contact.phone, sender.address
        s.expunge_all()
    links = CallLinks.of(settings)
    request = CallRequest(
        to=to,
        from_=from_,
        answer_url=links.answer(call_id),
        status_callback=links.status(call_id),
        ring_timeout_s=RING_TIMEOUT_S,
    )
    try:
        placed = provider_for(settings, sender).place(request)
    except SendError as exc:
        log.warning("call-back %s to %s not placed: %s", call_id, to, exc.message)
        with db.session(write=True) as s:
            call = s.get(Call, call_id)
            if call is not None and call.sid is None:
                call.status, call.error_code, call.error_message = "failed", exc.code, exc.message[:500]
                call.ended_at = utcnow()
        return "failed"
    with db.session(write=True) as s:
        call = s.get(Call, call_id)
        if call is not None and call.sid is None:
            call.sid = placed.sid
    log.info("call-back %s placed to %s (%s)", call_id, to, placed.sid)
    return "placed"
