"""The sandbox voice provider: calls that ring the console's browser phone instead of a voter.

``place`` takes every call at once: it returns a fresh sandbox SID (``CA`` + 32 hex, as
Twilio's) with status ``queued``, keeps the request in memory (``placed``, the last
``keep`` calls) and hands it to ``on_place`` — the host's hook that makes the simulator
ring (a row, a Redis message: this module keeps no database). ``cancel`` hands the SID
to ``on_cancel``. Nothing is dialled.

The simulator then drives the call through the same webhooks as Twilio, with the same
fields (``webhook_form`` builds them), so the whole voice path runs. Those webhooks are public,
so the sandbox accepts only requests marked as its own, in two ways at once:

* ``AccountSid`` is ``SANDBOX_ACCOUNT_SID`` (a real Twilio request names a real account);
* ``X-Twilio-Signature`` is Twilio's HMAC-SHA1 keyed with the sandbox's ``secret``
  instead of an auth token (``sign`` computes it): a forged request has no valid one.
"""

from __future__ import annotations

import collections
import secrets
import threading
from collections.abc import Callable, Mapping

from twilio.request_validator import RequestValidator

from bot.channels.twilio_base import verify_signature
from ivr.providers import forms
from ivr.providers.base import CallRequest, CallStatusUpdate, PlacedCall, VoiceProvider, VoiceRequest, register

SANDBOX_ACCOUNT_SID = "AC" + "5a" * 16  # "Z" for the sandbox: a SID no Twilio account has


def webhook_form(
    call_sid: str, *, to: str, from_: str, direction: str = "outbound-api", status: str = "in-progress", **fields: str
) -> dict[str, str]:
    """A sandbox webhook's form, with Twilio's field names; ``fields`` add or override (``Digits``, ...)."""
    return {
        "AccountSid": SANDBOX_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": status,
        "Direction": direction,
        "From": from_,
        "To": to,
        **fields,
    }


@register
class SandboxVoice(VoiceProvider):
    """Takes every call and lets the console's simulator answer it."""

    name = "sandbox"

    def __init__(
        self,
        secret: str,
        *,
        on_place: Callable[[PlacedCall, CallRequest], None] | None = None,
        on_cancel: Callable[[str], None] | None = None,
        keep: int = 100,
    ) -> None:
        """Sign with ``secret``; call ``on_place`` / ``on_cancel`` (exceptions propagate); keep ``keep`` calls."""
        if not (isinstance(secret, str) and secret):
            raise ValueError("secret must be a non-empty string (the key that signs sandbox webhooks)")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep!r}")
        self._signer = RequestValidator(secret)
        self.on_place, self.on_cancel, self.keep = on_place, on_cancel, keep
        self.placed: collections.OrderedDict[str, CallRequest] = collections.OrderedDict()
        self._lock = threading.Lock()

    def place(self, request: CallRequest) -> PlacedCall:
        """Take the call: a new SID, kept with its request, handed to ``on_place``."""
        placed = PlacedCall(sid=f"CA{secrets.token_hex(16)}", status="queued")
        with self._lock:
            self.placed[placed.sid] = request
            while len(self.placed) > self.keep:
                self.placed.popitem(last=False)
        if self.on_place is not None:
            self.on_place(placed, request)
        return placed

    def cancel(self, sid: str) -> None:
        """Hang up: forget the call and hand its SID to ``on_cancel``."""
        if not sid:
            raise ValueError("sid must be a call SID, got ''")
        with self._lock:
            self.placed.pop(sid, None)
        if self.on_cancel is not None:
            self.on_cancel(sid)

    def webhook_form(self, sid: str, **fields: str) -> dict[str, str]:
        """The webhook form of a call placed here (``KeyError`` if not kept): To, From from its request."""
        with self._lock:
            request = self.placed[sid]
        return webhook_form(sid, to=request.to, from_=request.from_, **fields)

    def sign(self, url: str, fields: Mapping[str, str]) -> str:
        """The ``X-Twilio-Signature`` of a sandbox request to ``url`` (the full public URL)."""
        return str(self._signer.compute_signature(url, dict(fields)))

    def parse_voice(self, form: Mapping[str, str]) -> VoiceRequest:
        """Read a voice webhook posted by the simulator (Twilio's fields)."""
        return forms.parse_voice(form)

    def parse_status(self, form: Mapping[str, str]) -> CallStatusUpdate:
        """Read a status callback posted by the simulator (Twilio's fields)."""
        return forms.parse_status(form)

    def verify_request(self, url: str, form: Mapping[str, str], signature: str | None) -> bool:
        """True only for a sandbox request: the sandbox account, signed with the sandbox secret."""
        if form.get("AccountSid") != SANDBOX_ACCOUNT_SID:
            return False
        return verify_signature(self._signer, url, form, signature)
