"""The voice provider interface: place and hang up calls, read call webhooks, verify them.

A voice provider carries calls as a messaging provider (``bot.channels``) carries
messages, and fails the same way: ``SendError(retryable=...)`` when a call cannot be
placed, ``ParseError(field=...)`` when a webhook is not what the provider sends. Requests
are plain form fields (``Mapping[str, str]``), so providers never see Flask, and they
keep no database: the caller stores what ``place`` returns.

Call statuses are DESIGN §5's, as Twilio reports them: queued, ringing, in-progress,
completed, busy, no-answer, failed, canceled; ``answered_by`` is human, machine, unknown
or ``None`` (no machine detection was asked, or nobody answered yet).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from bot.channels.base import ParseError, SendError

__all__ = [
    "CALL_STATUSES",
    "REGISTRY",
    "CallRequest",
    "CallStatusUpdate",
    "ParseError",
    "PlacedCall",
    "SendError",
    "VoiceProvider",
    "VoiceRequest",
    "register",
]

E164 = re.compile(r"\+[1-9]\d{1,14}")
CALL_STATUSES = ("queued", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled")
# A call in one of these is over: no more callbacks move it, only duplicates arrive.
FINAL_STATUSES = frozenset(("completed", "busy", "no-answer", "failed", "canceled"))
ANSWERED_BY = ("human", "machine", "unknown")
MACHINE_DETECTION = ("Enable", "DetectMessageEnd")
DIRECTIONS = ("inbound", "outbound-api", "outbound-dial", "trunking-originating", "trunking-terminating")
RING_TIMEOUT_S = range(5, 601)  # Twilio rings 5-600 s (its default: 60)
TIME_LIMIT_S = range(1, 14_401)  # Twilio ends a call after at most 4 hours

REGISTRY: dict[str, type[VoiceProvider]] = {}


def register(cls: type[VoiceProvider]) -> type[VoiceProvider]:
    """Class decorator: make a voice provider available under its ``name``."""
    if cls.name in REGISTRY:
        raise RuntimeError(f"voice provider {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def _is_url(value: object) -> bool:
    parts = urlsplit(value) if isinstance(value, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)


def _in(value: object, allowed: range) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in allowed


@dataclasses.dataclass(frozen=True)
class CallRequest:
    """One call to place.

    Attributes:
        to: The voter's number, E.164.
        from_: Our caller ID, E.164 (a number of ours or a verified caller ID).
        answer_url: Our voice webhook (absolute URL): fetched, with POST, when the call is answered.
        status_callback: Our call-status webhook (absolute URL), carrying our call id.
        ring_timeout_s: How long to let it ring before giving up (``no-answer``), 5-600.
        machine_detection: ``None``, ``"Enable"`` (answered_by as soon as known) or
            ``"DetectMessageEnd"`` (for a machine, once its greeting ended: leave a message).
        time_limit_s: Hang up after this many seconds of call, 1-14400 (``None``: Twilio's 4 hours).
    """

    to: str
    from_: str
    answer_url: str
    status_callback: str
    ring_timeout_s: int = 60
    machine_detection: str | None = None
    time_limit_s: int | None = None

    def __post_init__(self) -> None:
        for name in ("to", "from_"):
            value = getattr(self, name)
            if not (isinstance(value, str) and E164.fullmatch(value)):
                raise ValueError(f"{name} must be an E.164 number, got {value!r}")
        if self.to == self.from_:
            raise ValueError(f"to and from_ must differ, got {self.to!r} for both")
        for name in ("answer_url", "status_callback"):
            if not _is_url(getattr(self, name)):
                raise ValueError(f"{name} must be an absolute http(s) URL, got {getattr(self, name)!r}")
        if not _in(self.ring_timeout_s, RING_TIMEOUT_S):
            raise ValueError(f"ring_timeout_s must be 5-600, got {self.ring_timeout_s!r}")
        if self.machine_detection is not None and self.machine_detection not in MACHINE_DETECTION:
            allowed = "None, 'Enable' or 'DetectMessageEnd'"
            raise ValueError(f"machine_detection must be {allowed}, got {self.machine_detection!r}")
        if self.time_limit_s is not None and not _in(self.time_limit_s, TIME_LIMIT_S):
            raise ValueError(f"time_limit_s must be 1-14400 or None, got {self.time_limit_s!r}")


@dataclasses.dataclass(frozen=True)
class PlacedCall:
    """What the provider said about a call it took: its SID and status (usually ``queued``)."""

    sid: str
    status: str = "queued"

    def __post_init__(self) -> None:
        if not (isinstance(self.sid, str) and self.sid):
            raise ValueError(f"sid must be a non-empty string, got {self.sid!r}")
        _check_status(self.status)


def _check_status(status: str) -> None:
    if status not in CALL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(CALL_STATUSES)}, got {status!r}")


def _check_answered_by(answered_by: str | None) -> None:
    if answered_by is not None and answered_by not in ANSWERED_BY:
        raise ValueError(f"answered_by must be human, machine, unknown or None, got {answered_by!r}")


@dataclasses.dataclass(frozen=True)
class CallStatusUpdate:
    """A call status callback.

    Attributes:
        call_sid: The provider's call SID.
        status: One of ``CALL_STATUSES``.
        answered_by: human / machine / unknown, or ``None`` without machine detection.
        amd_result: The provider's own verdict (Twilio's ``AnsweredBy``: machine_end_beep, fax, ...).
        duration_s: Seconds the call lasted (on a final status).
        sip_response_code: The SIP answer (486 busy, 487 no answer, ...), when given.
        error_code: The provider's error code, when given.
        timestamp: When the provider saw the change (aware, UTC), when given.
        sequence_number: The callback's order among the call's callbacks (they may arrive out of order).
        raw: Every field as posted.
    """

    call_sid: str
    status: str
    answered_by: str | None = None
    amd_result: str | None = None
    duration_s: int | None = None
    sip_response_code: int | None = None
    error_code: str | None = None
    timestamp: dt.datetime | None = None
    sequence_number: int | None = None
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_status(self.status)
        _check_answered_by(self.answered_by)

    @property
    def final(self) -> bool:
        """True when the call is over."""
        return self.status in FINAL_STATUSES


@dataclasses.dataclass(frozen=True)
class VoiceRequest:
    """A hit on our voice webhook: a call answered or coming in, keys pressed, a recording made.

    Attributes:
        call_sid: The provider's call SID.
        from_phone: The caller, E.164 (on an outbound call: our number); ``None`` when withheld.
        to: Who was called, E.164 (on an outbound call: the voter).
        direction: inbound, outbound-api, outbound-dial, trunking-originating or -terminating.
        call_status: One of ``CALL_STATUSES``.
        answered_by: human / machine / unknown, or ``None`` without machine detection.
        amd_result: The provider's own verdict (Twilio's ``AnsweredBy``).
        digits: Keys pressed at a ``<Gather>`` ("" when none; "hangup" when a recording ended so).
        recording_url: Where a ``<Record>``'s recording is, if this request reports one.
        recording_duration_s: Its length in seconds.
        raw: Every field as posted.
    """

    call_sid: str
    from_phone: str | None
    to: str
    direction: str
    call_status: str
    answered_by: str | None = None
    amd_result: str | None = None
    digits: str = ""
    recording_url: str | None = None
    recording_duration_s: int | None = None
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}")
        _check_status(self.call_status)
        _check_answered_by(self.answered_by)

    @property
    def inbound(self) -> bool:
        """True when the voter called us."""
        return self.direction == "inbound"


class VoiceProvider(abc.ABC):
    """One way of carrying calls; subclasses are registered by ``name`` (``sandbox``, ``twilio``)."""

    name: ClassVar[str]
    channel: ClassVar[str] = "voice"

    @abc.abstractmethod
    def place(self, request: CallRequest) -> PlacedCall:
        """Place a call; raise ``SendError`` when the provider refuses it or cannot be reached."""

    @abc.abstractmethod
    def cancel(self, sid: str) -> None:
        """Hang up call ``sid`` whatever its state (ringing or live); raise ``SendError`` on failure."""

    def fetch(self, sid: str) -> CallStatusUpdate | None:
        """Where call ``sid`` stands now, asked of the provider (None: it cannot say).

        The reconciler asks about calls whose final status callback never came.
        """
        return None

    @abc.abstractmethod
    def parse_voice(self, form: Mapping[str, str]) -> VoiceRequest:
        """Read a voice webhook request; raise ``ParseError`` naming a bad field."""

    @abc.abstractmethod
    def parse_status(self, form: Mapping[str, str]) -> CallStatusUpdate:
        """Read a call status callback; raise ``ParseError`` naming a bad field."""

    @abc.abstractmethod
    def verify_request(self, url: str, form: Mapping[str, str], signature: str | None) -> bool:
        """True when the request really comes from the provider (fail closed)."""

    def close(self) -> None:  # noqa: B027 - most providers hold nothing to release
        """Release what the provider holds (HTTP connections)."""
