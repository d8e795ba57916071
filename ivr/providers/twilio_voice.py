"""Calls through Twilio Programmable Voice, with the real twilio SDK.

``place`` is ``client.calls.create``: our voice webhook as ``Url`` (POST), our status
webhook as ``StatusCallback`` (POST) for the initiated, ringing, answered and completed
events, ``Timeout`` (ring time), ``MachineDetection`` and ``TimeLimit`` when asked.
Machine detection is synchronous: Twilio fetches the voice webhook once it has a verdict,
with ``AnsweredBy``, so the first TwiML can already differ for a machine.

``cancel`` hangs up with ``Status=completed``, which Twilio applies to a call whatever
its state (``canceled`` would only stop a call that is still queued or ringing).

Errors are the messaging providers' (``bot.channels.twilio_base.send_error``):
retryable for HTTP 429 / Twilio 20429, 5xx, timeouts and lost connections (a read
timeout or a reset once the request went is ``maybe_taken``: the call may be ringing,
never place it again blindly; so is a 2xx answer that cannot be read); permanent with
Twilio's code otherwise — 21211 / 21214 /
21217 / 13223 / 13224 (not a number that can be called, see ``INVALID_NUMBER``), 21215
(no geographic permission for the destination), 21610 (the number unsubscribed), ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.channels.base import SendError
from bot.channels.twilio_base import TwilioApi, call_twilio
from ivr.providers import forms
from ivr.providers.base import CallRequest, CallStatusUpdate, PlacedCall, VoiceProvider, VoiceRequest, register

EVENTS = ("initiated", "ringing", "answered", "completed")
# Twilio's codes for a number that cannot be called at all: its recipient is skipped as
# invalid_number rather than retried.
INVALID_NUMBER = frozenset({"13223", "13224", "21211", "21214", "21217"})


@register
class TwilioVoice(TwilioApi, VoiceProvider):
    """Outbound and inbound calls through Twilio (the account, client and signature check: ``TwilioApi``)."""

    name = "twilio"

    def params(self, request: CallRequest) -> dict[str, Any]:
        """Keyword arguments of ``client.calls.create`` for ``request``."""
        params: dict[str, Any] = {
            "to": request.to,
            "from_": request.from_,
            "url": request.answer_url,
            "method": "POST",
            "status_callback": request.status_callback,
            "status_callback_method": "POST",
            "status_callback_event": list(EVENTS),
            "timeout": request.ring_timeout_s,
        }
        if request.machine_detection is not None:
            params["machine_detection"] = request.machine_detection
        if request.time_limit_s is not None:
            params["time_limit"] = request.time_limit_s
        return params

    def place(self, request: CallRequest) -> PlacedCall:
        """Ask Twilio to place the call; raise ``SendError`` when that fails."""
        try:
            call = call_twilio(lambda: self.client.calls.create(**self.params(request)), "the call")
        except SendError as exc:
            # A 2xx answer that cannot be read: Twilio took the call, which may be ringing now.
            exc.maybe_taken = exc.maybe_taken or exc.code == "bad_response"
            raise
        if not call.sid:
            raise SendError("Twilio's answer has no call SID", retryable=False, code="bad_response", maybe_taken=True)
        return PlacedCall(sid=call.sid, status=forms.STATUSES.get(str(call.status or ""), "queued"))

    def cancel(self, sid: str) -> None:
        """Hang up call ``sid`` (ringing or live); raise ``SendError`` when Twilio refuses (20404: no such call)."""
        if not sid:
            raise ValueError("sid must be a call SID, got ''")
        call_twilio(lambda: self.client.calls(sid).update(status="completed"), "the hang-up")

    def fetch(self, sid: str) -> CallStatusUpdate | None:
        """Ask Twilio for call ``sid`` (its status, who answered, its duration); raise ``SendError`` on failure."""
        call = call_twilio(lambda: self.client.calls(sid).fetch(), "the call's status")
        form = {"CallSid": sid, "CallStatus": str(call.status or "")}
        if call.answered_by:
            form["AnsweredBy"] = str(call.answered_by)
        if call.duration:
            form["CallDuration"] = str(call.duration)
        return forms.parse_status(form)

    def parse_voice(self, form: Mapping[str, str]) -> VoiceRequest:
        """Read Twilio's voice webhook (``ivr.providers.forms``)."""
        return forms.parse_voice(form)

    def parse_status(self, form: Mapping[str, str]) -> CallStatusUpdate:
        """Read Twilio's call status callback (``ivr.providers.forms``)."""
        return forms.parse_status(form)
