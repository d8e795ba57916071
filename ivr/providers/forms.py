"""Reading Twilio's call webhooks: the voice webhook and the call status callback.

Both voice providers speak Twilio's form fields (the sandbox's simulator posts the same
ones), so the parsing lives here once.

``CallStatus``: Twilio's values are ours (DESIGN §5), except ``initiated`` — posted by
the ``initiated`` status callback event when Twilio starts dialling — which is
``queued`` for us: the call is not ringing yet. Any other value is refused.

``AnsweredBy`` (machine detection): ``human`` -> human; ``machine_start``,
``machine_end_beep``, ``machine_end_silence``, ``machine_end_other`` and ``fax`` ->
machine; ``unknown`` -> unknown; absent or empty -> ``None``. Twilio's own value is kept
as ``amd_result`` (``machine_end_beep``: the greeting ended, a message can be left now).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping

from bot.channels.base import ParseError
from bot.channels.twilio_base import required
from ivr.providers.base import CALL_STATUSES, DIRECTIONS, E164, CallStatusUpdate, VoiceRequest

STATUSES = {**{status: status for status in CALL_STATUSES}, "initiated": "queued"}
MACHINE = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")
ANSWERED_BY = {"human": "human", "unknown": "unknown", **dict.fromkeys(MACHINE, "machine")}
DIGITS = re.compile(r"[0-9*#]*")


def parse_voice(form: Mapping[str, str]) -> VoiceRequest:
    """Read Twilio's voice webhook (answer, ``<Gather>`` and ``<Record>`` actions, inbound calls).

    Raises:
        ParseError: A field is missing or not what Twilio sends; ``field`` names it.
    """
    sid = required(form, "CallSid")
    to = required(form, "To")
    if not E164.fullmatch(to):
        raise ParseError("To", f"must be an E.164 number, got {to!r}")
    direction = required(form, "Direction")
    if direction not in DIRECTIONS:
        raise ParseError("Direction", f"must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    # A caller who withholds their number comes as "anonymous" (or a client: / sip: address).
    caller = form.get("From") or ""
    digits = form.get("Digits") or ""
    if not (digits == "hangup" or DIGITS.fullmatch(digits)):
        raise ParseError("Digits", f"must be keypad keys (0-9, *, #) or 'hangup', got {digits!r}")
    recording_url = form.get("RecordingUrl") or None
    if recording_url is not None and not recording_url.startswith(("https://", "http://")):
        raise ParseError("RecordingUrl", f"must be a URL, got {recording_url!r}")
    answered_by, amd_result = _answered_by(form)
    return VoiceRequest(
        call_sid=sid,
        from_phone=caller if E164.fullmatch(caller) else None,
        to=to,
        direction=direction,
        call_status=_status(form),
        answered_by=answered_by,
        amd_result=amd_result,
        digits=digits,
        recording_url=recording_url,
        recording_duration_s=_count(form, "RecordingDuration"),
        raw=dict(form),
    )


def parse_status(form: Mapping[str, str]) -> CallStatusUpdate:
    """Read Twilio's call status callback (initiated, ringing, answered, completed events).

    Raises:
        ParseError: A field is missing or not what Twilio sends; ``field`` names it.
    """
    sid = required(form, "CallSid")
    answered_by, amd_result = _answered_by(form)
    return CallStatusUpdate(
        call_sid=sid,
        status=_status(form),
        answered_by=answered_by,
        amd_result=amd_result,
        duration_s=_count(form, "CallDuration"),
        sip_response_code=_count(form, "SipResponseCode"),
        error_code=form.get("ErrorCode") or None,
        timestamp=_timestamp(form),
        sequence_number=_count(form, "SequenceNumber"),
        raw=dict(form),
    )


def _status(form: Mapping[str, str]) -> str:
    value = required(form, "CallStatus")
    if value not in STATUSES:
        raise ParseError("CallStatus", f"not a call status: {value!r}")
    return STATUSES[value]


def _answered_by(form: Mapping[str, str]) -> tuple[str | None, str | None]:
    value = form.get("AnsweredBy") or None
    if value is None:
        return None, None
    if value not in ANSWERED_BY:
        raise ParseError("AnsweredBy", f"must be one of {', '.join(ANSWERED_BY)}, got {value!r}")
    return ANSWERED_BY[value], value


def _count(form: Mapping[str, str], field: str) -> int | None:
    """A whole number >= 0 (seconds, a code, a sequence number), or ``None`` when absent."""
    value = form.get(field) or ""
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):
        raise ParseError(field, f"must be a whole number, got {value!r}")
    return int(value)


def _timestamp(form: Mapping[str, str]) -> dt.datetime | None:
    """Twilio's ``Timestamp`` (RFC 2822, "Tue, 31 Aug 2010 20:36:44 +0000") in UTC."""
    value = form.get("Timestamp") or ""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise ParseError("Timestamp", f"must be an RFC 2822 date, got {value!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
