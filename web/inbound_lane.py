"""The inbound-message webhook's common case, answered below Flask (``web.lane``).

Twilio posts every voter's message to ``/webhooks/twilio/messages``; at hundreds a
second this one route is the web tier's hot path. ``InboundLane`` answers the common
case the way ``web.webhooks.inbound`` does: the signature is checked first, then the
form is parsed and the message stored (de-duplicated on its MessageSid) and the drain
nudged (``bot.conversations.accept``).

Everything else goes on to that Flask view unchanged, with the body it came with: a
bad or missing signature, a form the provider cannot read, a consent keyword (routed
inside the request), a server that does not say the raw path, an error on the way.
So refusals, error answers and their log lines stay in one place, and the view checks
the signature again itself: this lane can only hand over, never let anything through.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from bot.channels.base import ParseError
from bot.conversations import accept, is_consent_keyword
from web import lane
from web.webhooks import EMPTY_TWIML, messaging_provider

log = logging.getLogger(__name__)
PATH = "/webhooks/twilio/messages"
TWIML = EMPTY_TWIML.encode()


class InboundLane(lane.Lane):
    """Answers signed inbound messages on ``PATH``; hands everything else to the app."""

    paths = frozenset({PATH})

    def answer(self, path: str, environ: dict[str, Any]) -> lane.Answer | None:
        """200 with empty TwiML once the message is stored; None hands the request to Flask."""
        outcome = self._accept(environ)
        return None if outcome is None else (200, outcome, lane.XML, TWIML)

    def _accept(self, environ: dict[str, Any]) -> str | None:
        """``ok`` or ``duplicate`` once the message is stored; None hands the request to Flask."""
        signed = self.signed(environ, lambda form: messaging_provider(form, self.rt))
        if signed is None:
            return None
        provider, form = signed
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


def init_app(app: Flask) -> None:
    """Put the lane in front of the app."""
    app.wsgi_app = InboundLane(app, app.wsgi_app)  # type: ignore[method-assign]
