"""Twilio's voice webhooks, their common case answered below Flask (``web.lane``).

Every request of a call waits on our answer: the answer of an incoming call, each
keypad step, the final status. ``VoiceLane`` checks the signature first, then runs the
same fast paths the Flask views in ``web.voice`` try first — ``ivr.quickanswer``,
``ivr.quickstep``, ``ivr.quickstatus`` — and answers with their TwiML (or 204).

Whatever a fast path does not take (it returns None or False: a call we placed, the
opt-out key, a recording, a campaign's call, a repeated request...) goes on to the
Flask view with its body, as does a request whose signature does not check, one the
provider cannot read, and any error here: the view checks the signature again, runs the
fast path again (it stored nothing) and then the full path, and answers an error with an
apology in TwiML. So this lane can only hand over, never let anything through.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from bot.channels.base import ParseError
from ivr.links import ANSWER_PATH, STATUS_PATH, STEP_PATH
from web import lane
from web.voice import query_number, quick_answers, quick_status, quick_steps, voice_provider

log = logging.getLogger(__name__)


class VoiceLane(lane.Lane):
    """Answers the common voice webhook requests; hands everything else to the app."""

    paths = frozenset({ANSWER_PATH, STEP_PATH, STATUS_PATH})

    def answer(self, path: str, environ: dict[str, Any]) -> lane.Answer | None:
        """TwiML (or 204 for a status) when a fast path took the request; None hands it to Flask."""
        signed = self.signed(environ, lambda form: voice_provider(self.rt))
        if signed is None:
            return None
        provider, form = signed
        params = lane.query(environ)
        try:
            if path == STATUS_PATH:
                update = provider.parse_status(form)
                if quick_status(self.rt).apply(update, query_number(params.get("c"))):
                    return 204, "ok", None, b""
                return None
            req = provider.parse_voice(form)
            if path == ANSWER_PATH:
                document = None if "c" in params else quick_answers(self.rt).answer(req)
            else:
                call_id, step = query_number(params.get("c")), query_number(params.get("n"))
                if call_id is None or step is None:
                    return None
                document = quick_steps(self.rt).step(req, call_id, step, params.get("s", ""))
        except ParseError:
            return None  # the view names the field
        except Exception as exc:  # noqa: BLE001 - the view runs it again and answers the error
            log.warning("voice %s: handed to the Flask view after %s: %s", path, type(exc).__name__, exc)
            return None
        return None if document is None else (200, "ok", lane.XML, document.encode())


def init_app(app: Flask) -> None:
    """Put the lane in front of the app."""
    app.wsgi_app = VoiceLane(app, app.wsgi_app)  # type: ignore[method-assign]
