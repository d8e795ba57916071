"""The inbound-message webhook's common case, answered below Flask.

Twilio posts every voter's message to ``/webhooks/twilio/messages``; at hundreds a
second this one route is the web tier's hot path. Flask's machinery around a view —
request and app contexts, the session, Werkzeug's form parsing, the console's
before/after-request hooks (user loading, CSRF, security headers, the request log) —
cost several times what storing the message does. ``InboundLane`` wraps the app's
WSGI callable and answers the common case itself, the way ``web.webhooks.inbound``
does: the signature is checked first, then the form is parsed and the message stored
(de-duplicated on its MessageSid) and the drain nudged (``bot.conversations.accept``).

Everything else goes on to that Flask view unchanged, with the body it came with: a
bad or missing signature, a form the provider cannot read, a consent keyword (routed
inside the request), a server that does not say the raw path, an error on the way.
So refusals, error answers and their log lines stay in one place, and the view checks
the signature again itself: this lane can only hand over, never let anything through.

Requests answered here are counted in ``/metrics`` and logged (``web.requestlog``,
with their ``X-Request-Id``) like every request; their answer goes without the
console's browser security headers, which only a browser reads.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask

from bot.channels.base import ParseError
from bot.conversations import accept, is_consent_keyword
from bot.runtime import Runtime
from web import requestlog
from web.metrics import TALLY
from web.webhooks import EMPTY_TWIML, messaging_provider, raw_target

log = logging.getLogger(__name__)
PATH = "/webhooks/twilio/messages"
# A larger form goes to Flask (and its MAX_CONTENT_LENGTH): Twilio's are a few KB.
MAX_BODY = 64 * 1024
TWIML = EMPTY_TWIML.encode()
HEADERS = [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(TWIML)))]
FORM_TYPE = "application/x-www-form-urlencoded"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class InboundLane:
    """WSGI middleware: answer signed inbound messages on ``PATH``, hand everything else to ``app``."""

    def __init__(self, app: Flask, wsgi_app: WsgiApp) -> None:
        self.rt: Runtime = app.extensions["canvass"]
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer the request, or pass it on."""
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "POST":
            started = time.perf_counter()
            outcome = self._accept(environ)
            if outcome is not None:
                TALLY.add(self.rt.redis, f"{PATH}|{outcome}")
                rid = requestlog.request_id(environ.get("HTTP_X_REQUEST_ID", ""))
                start_response("200 OK", [*HEADERS, ("X-Request-Id", rid)])
                requestlog.write("POST", PATH, PATH, 200, started, rid)
                return [TWIML]
        return self.wsgi_app(environ, start_response)

    def _accept(self, environ: dict[str, Any]) -> str | None:
        """``ok`` or ``duplicate`` once the message is stored; None hands the request to Flask."""
        target = raw_target(environ)
        settings = self.rt.settings
        if not (target and settings.twilio_auth_token and settings.twilio_account_sid):
            return None
        form = _form(environ)
        if form is None:
            return None
        provider = messaging_provider(form, self.rt)
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE")
        if not provider.verify_request(settings.public_base_url + target, form, signature):
            return None
        try:
            message = provider.parse_inbound(form)
        except ParseError:
            return None
        if is_consent_keyword(message):
            return None
        try:
            outcome = accept(self.rt, message, provider="twilio")
        except Exception as exc:  # noqa: BLE001 - the view runs it again and answers the error
            why = f"{type(exc).__name__}: {exc}"
            log.warning("inbound %s: handed to the Flask view after %s", message.provider_id, why)
            return None
        return "duplicate" if outcome == "duplicate" else "ok"


def _form(environ: dict[str, Any]) -> dict[str, str] | None:
    """The url-encoded form, first value of each field, as Werkzeug reads it; None if not one.

    The body is put back as it was, for the Flask view to read if the lane hands over.
    """
    if not environ.get("CONTENT_TYPE", "").startswith(FORM_TYPE):
        return None
    length = environ.get("CONTENT_LENGTH") or ""
    if not length.isdigit() or not 0 < int(length) <= MAX_BODY:
        return None
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    form: dict[str, str] = {}
    # Werkzeug's own decoding of url-encoded forms (its error handler is registered
    # when it is imported), so that the lane signs and reads the same values as the view.
    for name, value in parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"):
        form.setdefault(name, value)
    return form


def init_app(app: Flask) -> None:
    """Put the lane in front of the app."""
    app.wsgi_app = InboundLane(app, app.wsgi_app)  # type: ignore[method-assign]
