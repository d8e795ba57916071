"""Senders: the numbers and WhatsApp senders canvass sends from, and their health.

A sender has a channel (whatsapp, sms, voice), a provider (sandbox, twilio), a rate
limit (messages or calls per second) and a health status: a sender marked unhealthy
cannot be chosen for a campaign. The CLI (``canvass senders``) and the console's
administration pages both go through these functions.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Sender
from bot.phones import InvalidPhone, PhoneParser

CHANNELS = ("whatsapp", "sms", "voice")
PROVIDERS = ("sandbox", "twilio")
MIN_RATE, MAX_RATE = 0.01, 1000.0
MAX_NAME, MAX_NOTE = 80, 200


class SenderError(ValueError):
    """Bad input for a sender; ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
    value = (value or "").strip().lower()
    if value not in allowed:
        raise SenderError(field, f"one of {', '.join(allowed)}, got {value!r}")
    return value


def _rate(value: float | str) -> float:
    try:
        rate = float(str(value).strip())
    except ValueError:
        raise SenderError("rate", f"a number of messages per second such as 1 or 0.5, got {value!r}") from None
    if not MIN_RATE <= rate <= MAX_RATE:
        raise SenderError("rate", f"from {MIN_RATE:g} to {MAX_RATE:g} per second, got {value!r}")
    return rate


def _service(value: str | None) -> str | None:
    value = (value or "").strip()
    if value and not (value.startswith("MG") and len(value) == 34):
        raise SenderError(
            "messaging_service", f"a Messaging Service SID is MG followed by 32 characters, got {value!r}"
        )
    return value or None


def _name(value: str | None) -> str | None:
    value = (value or "").strip()
    if len(value) > MAX_NAME:
        raise SenderError("name", f"at most {MAX_NAME} characters")
    return value or None


def add_sender(
    db: Session,
    *,
    address: str,
    channel: str,
    provider: str,
    region: str,
    name: str | None = None,
    rate: float | str = 1.0,
    messaging_service: str | None = None,
) -> Sender:
    """Add a healthy sender; ``address`` may be written as people write numbers (stored in E.164)."""
    channel = _choice("channel", channel, CHANNELS)
    provider = _choice("provider", provider, PROVIDERS)
    try:
        e164 = PhoneParser(region).parse(address).e164
    except InvalidPhone as exc:
        raise SenderError("address", f"{address!r}: {exc.reason}") from None
    fields = {"rate_per_s": _rate(rate), "messaging_service_sid": _service(messaging_service), "name": _name(name)}
    if db.scalar(select(Sender.id).where(Sender.channel == channel, Sender.address == e164)) is not None:
        raise SenderError("address", f"{e164} is already a {channel} sender")
    sender = Sender(provider=provider, channel=channel, address=e164, healthy=True, **fields)
    db.add(sender)
    db.flush()
    return sender


def update_sender(
    db: Session,
    sender: Sender,
    *,
    provider: str,
    name: str | None,
    rate: float | str,
    messaging_service: str | None,
) -> dict[str, list[object]]:
    """Change a sender's provider, label, rate and Messaging Service; returns ``{field: [before, after]}``.

    The channel and the number stay: campaigns and conversations refer to them.
    """
    wanted = {
        "provider": _choice("provider", provider, PROVIDERS),
        "name": _name(name),
        "rate_per_s": _rate(rate),
        "messaging_service_sid": _service(messaging_service),
    }
    changed: dict[str, list[object]] = {}
    for field, value in wanted.items():
        if getattr(sender, field) != value:
            changed[field] = [getattr(sender, field), value]
            setattr(sender, field, value)
    db.flush()
    return changed


def set_health(db: Session, sender: Sender, *, healthy: bool, note: str | None = None) -> None:
    """Mark a sender healthy (it may be chosen again) or unhealthy, with a note saying why."""
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise SenderError("note", f"at most {MAX_NOTE} characters")
    if not healthy and not note:
        raise SenderError("note", "say why the sender is unhealthy (e.g. number blocked by the operator)")
    sender.healthy = healthy
    sender.health_note = None if healthy else note
    db.flush()


def describe(sender: Sender) -> str:
    """``whatsapp +919999900001 (sandbox)``: a sender in words, for messages and the audit trail."""
    return f"{sender.channel} {sender.address} ({sender.provider})"
