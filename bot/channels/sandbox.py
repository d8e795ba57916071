"""The sandbox provider: a real provider that keeps messages here instead of sending them.

Outbound messages are accepted at once (their rows are the sandbox's inbox, shown by the
console's simulator and ``canvass sandbox reply``); a person replies through the console,
the API or ``canvass sandbox reply PHONE TEXT``. Sends take the same queue and worker path
as Twilio sends — only this last call differs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from bot.channels.base import Inbound, Outbound, ParseError, Provider, Sent, StatusUpdate, register

CHANNELS = ("whatsapp", "sms", "voice")


@register
class Sandbox(Provider):
    """Accepts every message; replies come in through canvass itself."""

    name = "sandbox"
    channel = "any"

    def send(self, message: Outbound) -> Sent:
        """Accept the message (it is delivered to the sandbox inbox)."""
        return Sent(provider_id=f"SB{secrets.token_hex(16)}", status="delivered")

    def parse_inbound(self, form: Mapping[str, str]) -> Inbound:
        """Read a reply typed into the sandbox: From, To, Body, Channel."""
        channel = form.get("Channel", "whatsapp")
        if channel not in CHANNELS:
            raise ParseError("Channel", f"must be one of {', '.join(CHANNELS)}, got {channel!r}")
        for field in ("From", "To"):
            if not form.get(field, "").startswith("+"):
                raise ParseError(field, f"must be an E.164 number, got {form.get(field)!r}")
        return Inbound(
            provider_id=form.get("MessageSid") or f"SBIN{secrets.token_hex(16)}",
            channel=channel,
            from_phone=form["From"],
            to=form["To"],
            text=form.get("Body", ""),
            button_payload=form.get("ButtonPayload") or None,
            raw=dict(form),
        )

    def parse_status(self, form: Mapping[str, str]) -> StatusUpdate:
        """Sandbox messages are delivered when accepted; a status request is read all the same."""
        if not form.get("MessageSid"):
            raise ParseError("MessageSid", "required")
        return StatusUpdate(
            provider_id=form["MessageSid"], status=form.get("MessageStatus", "delivered"), raw=dict(form)
        )

    def verify_request(self, url: str, form: Mapping[str, str], signature: str | None) -> bool:
        """Sandbox replies come from signed-in users and the CLI, never from outside."""
        return True
