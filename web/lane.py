"""A lane below Flask: a few hot webhook routes answered by plain WSGI, everything else handed on.

Flask's machinery around a view — request and app contexts, the session, Werkzeug's
form parsing, the console's before/after-request hooks (user loading, CSRF, security
headers, the request log) — costs more than a webhook's own work when Twilio posts
hundreds of requests a second. A ``Lane`` wraps the app's WSGI callable and answers
the common case of its routes itself (``web.inbound_lane``, ``web.voice_lane``).

A lane only ever hands over: whatever it does not answer (a bad signature, an unusual
request, an error on the way) goes to the Flask view with the body it came with, and
the view checks the signature again. Requests a lane answers are counted in
``/metrics`` and logged (``web.requestlog``, with their ``X-Request-Id``) like every
request; their answer goes without the console's browser security headers, which only a
browser reads.
"""

from __future__ import annotations

import abc
import io
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask

from bot.runtime import Runtime
from web import requestlog
from web.metrics import TALLY
from web.webhooks import raw_target

# A larger form goes to Flask (and its MAX_CONTENT_LENGTH): Twilio's are a few KB.
MAX_BODY = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
XML = "text/xml; charset=utf-8"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
# What a lane answers: the HTTP status, the outcome counted in /metrics, the content type and body.
Answer = tuple[int, str, str | None, bytes]
STATUS_LINES = {200: "200 OK", 204: "204 NO CONTENT"}


class Lane(abc.ABC):
    """WSGI middleware: answer POSTs to ``paths`` when ``answer`` can, hand everything else to ``wsgi_app``."""

    paths: frozenset[str] = frozenset()

    def __init__(self, app: Flask, wsgi_app: WsgiApp) -> None:
        self.rt: Runtime = app.extensions["canvass"]
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer the request, or pass it on."""
        path = environ.get("PATH_INFO", "")
        if path in self.paths and environ.get("REQUEST_METHOD") == "POST":
            started = time.perf_counter()
            answered = self.answer(path, environ)
            if answered is not None:
                status, outcome, content_type, body = answered
                TALLY.add(self.rt.redis, f"{path}|{outcome}")
                rid = requestlog.request_id(environ.get("HTTP_X_REQUEST_ID", ""))
                headers = [("Content-Length", str(len(body))), ("X-Request-Id", rid)]
                if content_type:
                    headers.append(("Content-Type", content_type))
                start_response(STATUS_LINES[status], headers)
                requestlog.write("POST", path, path, status, started, rid)
                return [body]
        return self.wsgi_app(environ, start_response)

    @abc.abstractmethod
    def answer(self, path: str, environ: dict[str, Any]) -> Answer | None:
        """The answer to a POST on one of ``paths``; None hands the request to Flask (each lane says how)."""

    def signed(
        self, environ: dict[str, Any], provider_for: Callable[[dict[str, str]], Any]
    ) -> tuple[Any, dict[str, str]] | None:
        """The provider and the form of a request Twilio signed; None: not one (the view says why).

        ``provider_for(form)`` is the provider whose token checks the signature. The URL
        checked is the public base and the raw path and query, as the server received them.
        """
        target = raw_target(environ)
        settings = self.rt.settings
        if not (target and settings.twilio_auth_token and settings.twilio_account_sid):
            return None
        fields = form(environ)
        if fields is None:
            return None
        provider = provider_for(fields)
        if not provider.verify_request(
            settings.public_base_url + target, fields, environ.get("HTTP_X_TWILIO_SIGNATURE")
        ):
            return None
        return provider, fields


def form(environ: dict[str, Any]) -> dict[str, str] | None:
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
    return _fields(text)


def query(environ: dict[str, Any]) -> dict[str, str]:
    """The query string's fields, first value of each, as Werkzeug reads them."""
    return _fields(environ.get("QUERY_STRING", ""))


def _fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    # Werkzeug's own decoding of url-encoded forms (its error handler is registered
    # when it is imported), so that the lane signs and reads the same values as the view.
    for name, value in parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"):
        found.setdefault(name, value)
    return found
