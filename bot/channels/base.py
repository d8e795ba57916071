"""The provider interface: send, parse an inbound request, parse a status callback, verify.

A *channel* is how a voter is reached (whatsapp, sms, voice); a *provider* carries it
(sandbox, twilio). Each provider class is registered by name. Requests from a provider
are plain form fields (``Mapping[str, str]``) so that providers never see Flask.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

REGISTRY: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: make a provider available under its ``name``."""
    if cls.name in REGISTRY:
        raise RuntimeError(f"provider {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


class SendError(Exception):
    """A send failed; ``retryable`` says whether trying again later may work.

    Retryable: rate limits (HTTP 429 / Twilio 20429), server errors (5xx), timeouts and
    connection failures. Permanent: everything else, e.g. 21211 (invalid number), 21610
    (the voter opted out at the carrier), 63016 (outside WhatsApp's 24-hour window).

    ``maybe_taken``: the request reached the provider and its answer was lost (a read
    timeout, a connection reset once the request was written): the provider may have
    taken the message. Such a send must never be made again blindly — it is ``unknown``
    until its status callback settles it — whatever ``retryable`` says.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str | None = None,
        status: int | None = None,
        maybe_taken: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.status = status
        self.maybe_taken = maybe_taken


@dataclasses.dataclass(frozen=True)
class Outbound:
    """One message to send."""

    message_id: int
    to: str  # E.164
    sender: str  # our number (E.164) or WhatsApp sender
    channel: str
    text: str | None = None
    media_urls: tuple[str, ...] = ()
    # Quick replies: (key, label) pairs.
    choices: tuple[tuple[str, str], ...] = ()
    # WhatsApp templates approved through Twilio's Content API.
    content_sid: str | None = None
    content_variables: Mapping[str, str] | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    # Seconds the provider may keep trying to deliver (SMS validity period).
    validity_s: int | None = None


@dataclasses.dataclass(frozen=True)
class Sent:
    """What the provider said about an accepted message."""

    provider_id: str
    status: str  # queued, sent, delivered, ...


@dataclasses.dataclass(frozen=True)
class Inbound:
    """A voter's message as the provider delivered it."""

    provider_id: str
    channel: str
    from_phone: str  # E.164
    to: str  # our number
    text: str
    media: tuple[tuple[str, str], ...] = ()  # (url, content type)
    profile_name: str | None = None
    button_payload: str | None = None
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class StatusUpdate:
    """A delivery status callback."""

    provider_id: str
    status: str
    error_code: str | None = None
    error_message: str | None = None
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class ParseError(ValueError):
    """The request is not what the provider sends; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Provider(abc.ABC):
    """One way of carrying messages on one channel."""

    name: ClassVar[str]
    channel: ClassVar[str]

    @abc.abstractmethod
    def send(self, message: Outbound) -> Sent:
        """Hand a message to the provider; raise ``SendError`` when it is refused."""

    @abc.abstractmethod
    def parse_inbound(self, form: Mapping[str, str]) -> Inbound:
        """Read an inbound-message request; raise ``ParseError`` naming a bad field."""

    @abc.abstractmethod
    def parse_status(self, form: Mapping[str, str]) -> StatusUpdate:
        """Read a status callback; raise ``ParseError`` naming a bad field."""

    @abc.abstractmethod
    def verify_request(self, url: str, form: Mapping[str, str], signature: str | None) -> bool:
        """True when the request really comes from the provider (fail closed)."""
