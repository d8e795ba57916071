"""Shared code of the Twilio providers: the account, the SDK client, sending and webhooks.

The twilio SDK is used for real, pointed at ``TWILIO_API_BASE`` (tests use local stand-ins).

Twilio's message statuses map onto ours (``bot.models.conversations.MessageStatus``):
accepted, scheduled, queued, sending -> ``sending``; sent -> ``sent``; delivered,
partially_delivered -> ``delivered``; read -> ``read``; failed, canceled -> ``failed``;
undelivered -> ``undelivered``. Twilio's queued states become ``sending``, never
``pending``: pending rows are (re-)enqueued, so an accepted message mapped there could be
sent twice. ``receiving`` / ``received`` (inbound messages) and statuses Twilio may add
later are refused in a status callback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import requests
import requests.adapters
import urllib3
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.channels.base import Inbound, Outbound, ParseError, Provider, SendError, Sent, StatusUpdate
from bot.channels.twilio_signature import TwilioSignature

E164 = re.compile(r"\+[1-9]\d{1,14}")
MAX_VALIDITY_S = 36_000  # Twilio accepts ValidityPeriod 1..36000 seconds
MAX_MEDIA = 10  # Twilio's limit of media per message
# HTTP connections kept per client: at least as many as a batch job's sends in flight.
POOL_SIZE = 128
# Bad Gateway, Gateway Timeout: what stood between us and Twilio lost its answer.
GATEWAY_ANSWERS = (502, 504)
T = TypeVar("T")

STATUSES = {
    **dict.fromkeys(("accepted", "scheduled", "queued", "sending"), "sending"),
    **dict.fromkeys(("delivered", "partially_delivered"), "delivered"),
    **dict.fromkeys(("failed", "canceled"), "failed"),
    **{"sent": "sent", "read": "read", "undelivered": "undelivered"},
}


@dataclasses.dataclass(frozen=True)
class TwilioAccount:
    """The Twilio account canvass sends from, and where its REST API lives."""

    account_sid: str
    auth_token: str = dataclasses.field(repr=False)
    api_base: str = "https://api.twilio.com"
    public_base_url: str = "http://127.0.0.1:5000"
    messaging_service_sid: str | None = None
    timeout_s: float = 10.0
    content_api_base: str = "https://content.twilio.com"

    def __post_init__(self) -> None:
        if not (self.account_sid and self.auth_token and self.timeout_s > 0):
            raise ValueError("a Twilio account needs an account SID, an auth token and a positive timeout")

    @classmethod
    def from_settings(cls, settings: Any, messaging_service_sid: str | None = None) -> TwilioAccount:
        """Build the account from ``bot.settings.Settings`` and an optional default Messaging Service."""
        return cls(
            account_sid=settings.twilio_account_sid or "",
            auth_token=settings.twilio_auth_token or "",
            api_base=settings.twilio_api_base,
            public_base_url=settings.public_base_url,
            messaging_service_sid=messaging_service_sid,
            timeout_s=settings.twilio_timeout_s,
            content_api_base=settings.twilio_content_api_base,
        )


def make_client(account: TwilioAccount, http_client: HttpClient | None = None) -> Client:
    """Build a ``twilio.rest.Client`` that talks to ``account.api_base`` with a timeout.

    The SDK keeps each API's base URL on its domain object (``client.api.base_url``);
    ``http_client`` defaults to a ``TwilioHttpClient`` with ``account.timeout_s``.
    """
    if http_client is None:
        http_client = TwilioHttpClient(timeout=account.timeout_s)
        # A batch keeps dozens of sends in flight: the SDK's pool (6 over https, requests'
        # 10 over http, the rest dropped after each call) would open (and for Twilio,
        # TLS-handshake) a new connection for most of them. Never retried below us either:
        # a resent create could message the voter twice.
        adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=POOL_SIZE, max_retries=0)
        assert http_client.session is not None
        for scheme in ("https://", "http://"):
            http_client.session.mount(scheme, adapter)
        _environment_read_once(http_client.session, account.api_base)
    client = Client(account.account_sid, account.auth_token, http_client=http_client)
    client.edge = None  # ignore TWILIO_EDGE / TWILIO_REGION: api_base says where to go
    client.region = None
    client.api.base_url = account.api_base.rstrip("/")
    client.content.base_url = account.content_api_base.rstrip("/")
    return client


def _environment_read_once(session: requests.Session, api_base: str) -> None:
    """Read the proxy and CA-bundle variables now, not on every request.

    ``requests`` looks them up (and parses ``NO_PROXY``) for each request while
    ``trust_env`` is on: ~6 % of a batch job's CPU at a few hundred sends a second. Taken
    once here, as every other setting is read once at start, they hold for the client's
    life: ``HTTPS_PROXY`` / ``HTTP_PROXY`` (unless ``NO_PROXY`` covers the API's host) and
    ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``.
    """
    proxies, bundle = environment(api_base)
    session.proxies.update(proxies)
    if bundle:
        session.verify = bundle
    session.trust_env = False


def environment(api_base: str) -> tuple[dict[str, str], str | None]:
    """The proxies for ``api_base`` (``NO_PROXY`` applied) and the CA bundle the environment names, if any."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return requests.utils.get_environ_proxies(api_base), bundle or None


def _never_connected(exc: Exception) -> bool:
    """True when ``exc`` failed while opening the connection, before any byte of the request went."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def send_error(exc: Exception, subject: str = "the message") -> SendError:
    """Translate an SDK or ``requests`` error into a ``SendError``.

    Retryable: HTTP 429 (Twilio 20429), 5xx, timeouts and connection failures. Permanent:
    every other refusal, keeping Twilio's error code (21211, 21610, 63016, ...). A 502 or
    504 is a gateway's answer, not Twilio's refusal: ``maybe_taken``, as a read timeout.
    A read timeout (``timeout``) or a connection lost once the request was written
    (``connection_lost``) may have been taken by Twilio (``maybe_taken``); only a
    connection that never opened (``connection``: refused, unresolvable, connect
    timeout) is certain to have sent nothing.
    ``subject`` names what Twilio was asked about ("the message", "the template").
    """
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(exc.status)
        # Without a code in the body, the SDK puts the HTTP status there: not a Twilio code.
        code = str(exc.code) if exc.code is not None and exc.code != status else None
        text = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
        retryable = status == 429 or code == "20429" or status >= 500
        if status in GATEWAY_ANSWERS:
            # A gateway (Twilio's edge, a proxy) gave up on what was behind it: the request
            # may have been taken there, as after a read timeout.
            message = f"a gateway answered for Twilio about {subject} (HTTP {status}): {text}"
            return SendError(message, retryable=True, code=code or "gateway", status=status, maybe_taken=True)
        message = f"Twilio refused {subject} (HTTP {status}): {text}"
        return SendError(message, retryable=retryable, code=code, status=status)
    if isinstance(exc, requests.ConnectTimeout) or _never_connected(exc):
        return unreachable(exc)
    if isinstance(exc, requests.Timeout):
        return unanswered(exc)
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return connection_lost(exc)
    return SendError(f"could not send {subject} to Twilio: {type(exc).__name__}: {exc}", retryable=False)


def unreachable(exc: Exception) -> SendError:
    """No connection, so no request: Twilio cannot have taken anything (retryable)."""
    return SendError(f"could not reach Twilio: {exc}", retryable=True, code="connection")


def unanswered(exc: Exception) -> SendError:
    """The request went and no answer came in time: Twilio may have taken it."""
    return SendError(f"Twilio did not answer in time: {exc}", retryable=True, code="timeout", maybe_taken=True)


def connection_lost(exc: Exception) -> SendError:
    """The connection broke once the request was on its way (reset, closed, a cut answer).

    A client cannot tell whether Twilio read it and took the message first.
    """
    return SendError(
        f"the connection to Twilio was lost before its answer: {exc}",
        retryable=True,
        code="connection_lost",
        maybe_taken=True,
    )


def call_twilio(request: Callable[[], T], subject: str = "the message") -> T:
    """Run one SDK request; raise ``SendError`` (``send_error``) when it fails.

    A 2xx answer that is not JSON may mean Twilio took the request: permanent
    (``bad_response``), never retried.
    """
    try:
        return request()
    except (TwilioRestException, TwilioServiceException, requests.RequestException) as exc:
        raise send_error(exc, subject) from exc
    except ValueError as exc:
        raise unreadable(exc) from exc


def unreadable(exc: Exception) -> SendError:
    """A 2xx answer that is not JSON: Twilio may have taken the request; never retried."""
    return SendError(f"Twilio's answer could not be read: {exc}", retryable=False, code="bad_response")


def sent_from(created: Any) -> Sent:
    """What a created message resource says (``bad_response`` without a SID)."""
    if not created.sid:
        raise SendError("Twilio's answer has no message SID", retryable=False, code="bad_response")
    return Sent(provider_id=created.sid, status=STATUSES.get(str(created.status or ""), "sending"))


def verify_signature(validator: RequestValidator, url: str, form: Mapping[str, str], signature: str | None) -> bool:
    """Check ``X-Twilio-Signature`` over the full public URL and the form; no signature fails."""
    if not signature:
        return False
    return bool(validator.validate(url, form, signature))


class TwilioApi:
    """What every Twilio provider holds: the account, its SDK client, the check of its webhooks."""

    def __init__(self, account: TwilioAccount, client: Client | None = None) -> None:
        """Talk to ``account.api_base`` through ``client`` (default: ``make_client(account)``)."""
        self.account = account
        self.client = client or make_client(account)
        # What makes the transport of ``send_async`` (None: ``twilio_async.AioHttpClient``).
        self.async_http: Callable[[TwilioAccount], Any] | None = None
        self._signature = TwilioSignature(account.auth_token)

    def close(self) -> None:
        """Release the pooled HTTP connections of the client."""
        session = getattr(self.client.http_client, "session", None)
        if isinstance(session, requests.Session):
            session.close()

    def verify_request(self, url: str, form: Mapping[str, str], signature: str | None) -> bool:
        """Check ``X-Twilio-Signature`` over the full public URL (query included) and the form; none fails.

        The form is a plain dict of one value per field, as the webhooks read it; any
        other mapping (a multi-dict, whose every value is signed) goes to the SDK's check.
        """
        if type(form) is not dict:
            return verify_signature(RequestValidator(self.account.auth_token), url, form, signature)
        return self._signature.valid(url, form, signature)


class TwilioMessaging(TwilioApi, Provider):
    """Twilio Programmable Messaging; subclasses choose the channel and address prefix."""

    prefix: ClassVar[str] = ""  # "whatsapp:" for WhatsApp addresses

    def body(self, message: Outbound) -> str | None:
        """The text to send: the message's text with quick replies as numbered lines."""
        lines = [message.text] if message.text else []
        lines += [f"{n}. {label}" for n, (_key, label) in enumerate(message.choices, start=1)]
        return "\n".join(lines) or None

    def params(self, message: Outbound) -> dict[str, Any]:
        """Keyword arguments of ``client.messages.create``; a permanent ``SendError`` if unsendable."""
        if message.channel != self.channel:
            raise SendError(f"{self.name} sends {self.channel}, not {message.channel}", retryable=False)
        if not E164.fullmatch(message.to):
            raise SendError(f"To: not an E.164 number: {message.to!r}", retryable=False)
        params: dict[str, Any] = {"to": self.prefix + message.to}
        if message.messaging_service_sid:
            params["messaging_service_sid"] = message.messaging_service_sid
        elif message.sender:
            params["from_"] = self.prefix + message.sender
        elif self.account.messaging_service_sid:
            params["messaging_service_sid"] = self.account.messaging_service_sid
        else:
            raise SendError("From: no sender and no Messaging Service", retryable=False)
        if message.content_sid:
            # The approved template carries the text, media and buttons.
            params["content_sid"] = message.content_sid
            if message.content_variables:
                params["content_variables"] = json.dumps(dict(message.content_variables), ensure_ascii=False)
        else:
            body = self.body(message)
            if body is None and not message.media_urls:
                raise SendError("Body: the message has no text, media or template", retryable=False)
            if len(message.media_urls) > MAX_MEDIA:
                raise SendError(f"MediaUrl: at most {MAX_MEDIA} media per message", retryable=False)
            if body is not None:
                params["body"] = body
            if message.media_urls:
                params["media_url"] = list(message.media_urls)
        if message.status_callback:
            callback = message.status_callback
            if callback.startswith("/"):
                callback = self.account.public_base_url.rstrip("/") + callback
            if not callback.startswith(("https://", "http://")):
                raise SendError(f"StatusCallback: not an absolute URL: {callback!r}", retryable=False)
            params["status_callback"] = callback
        if message.validity_s is not None:
            if message.validity_s < 1:
                raise SendError("ValidityPeriod: the message expired before it was sent", retryable=False)
            params["validity_period"] = min(message.validity_s, MAX_VALIDITY_S)
        return params

    def create(self, params: Mapping[str, Any]) -> Sent:
        """Call ``client.messages.create(**params)``; raise ``SendError`` when that fails."""
        return sent_from(call_twilio(lambda: self.client.messages.create(**params)))

    def send(self, message: Outbound) -> Sent:
        """Hand ``message`` to Twilio; raise ``SendError`` when it is refused."""
        return self.create(self.params(message))

    async def send_async(self, message: Outbound) -> Sent:
        """``send`` from an event loop, through the SDK's ``create_async`` (``twilio_async``)."""
        from bot.channels.twilio_async import create_async  # it builds on this module

        if self.async_http is None:
            return await create_async(self.account, self.params(message))
        return await create_async(self.account, self.params(message), self.async_http)

    def address(self, form: Mapping[str, str], field: str) -> str:
        """The E.164 number in ``form[field]``, without the channel prefix."""
        value = form.get(field) or ""
        if self.prefix:
            if not value.startswith(self.prefix):
                raise ParseError(field, f"must start with {self.prefix!r}, got {value!r}")
            value = value[len(self.prefix) :]
        if not E164.fullmatch(value):
            raise ParseError(field, f"must be an E.164 number, got {value!r}")
        return value

    def parse_inbound(self, form: Mapping[str, str]) -> Inbound:
        """Read Twilio's inbound-message request (MessageSid, From, To, Body, media, buttons)."""
        sid = required(form, "MessageSid")
        from_phone, to = self.address(form, "From"), self.address(form, "To")
        count = form.get("NumMedia") or "0"
        if not (count.isdigit() and int(count) <= MAX_MEDIA):
            raise ParseError("NumMedia", f"must be a number from 0 to {MAX_MEDIA}, got {count!r}")
        media = []
        for n in range(int(count)):
            url = form.get(f"MediaUrl{n}") or ""
            if not url.startswith(("https://", "http://")):
                raise ParseError(f"MediaUrl{n}", f"must be a URL, got {url!r}")
            media.append((url, form.get(f"MediaContentType{n}") or "application/octet-stream"))
        return Inbound(
            provider_id=sid,
            channel=self.channel,
            from_phone=from_phone,
            to=to,
            text=form.get("Body") or form.get("ButtonText") or "",
            media=tuple(media),
            profile_name=form.get("ProfileName") or None,
            button_payload=form.get("ButtonPayload") or None,
            raw=dict(form),
        )

    def parse_status(self, form: Mapping[str, str]) -> StatusUpdate:
        """Read Twilio's status callback; statuses map as the module docstring shows."""
        sid = required(form, "MessageSid")
        twilio_status = form.get("MessageStatus") or ""
        if twilio_status not in STATUSES:
            raise ParseError("MessageStatus", f"not an outbound message status: {twilio_status!r}")
        return StatusUpdate(
            provider_id=sid,
            status=STATUSES[twilio_status],
            error_code=form.get("ErrorCode") or None,
            error_message=form.get("ErrorMessage") or None,
            raw=dict(form),
        )


def required(form: Mapping[str, str], field: str) -> str:
    """The value of ``form[field]``; ``ParseError`` when it is missing or empty."""
    value = form.get(field) or ""
    if not value:
        raise ParseError(field, "required")
    return value
