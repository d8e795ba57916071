"""The sandbox phone: take a call from a flow in the browser, with a keypad and audio.

The phone runs the same ``CallDesk`` as Twilio's webhooks and gets the same TwiML; the
server reads that TwiML into steps (``ivr.phone_script``) and adds the rendered audio of
each spoken text, and the page's script plays them and sends the keys back. Requests
carry the console's login and CSRF token instead of Twilio's signature; the signed step
reference inside the action URL is checked exactly as for Twilio.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import jsonify, render_template, request
from sqlalchemy import select

from bot.outbox import queue_sends
from bot.phones import InvalidPhone, PhoneParser
from ivr import phone_script
from ivr.calls import Answered, CallRefused
from ivr.models import VoiceLine
from ivr.providers.base import CallStatusUpdate, VoiceRequest
from web.auth.access import requires
from web.console import bp
from web.context import db_session, runtime
from web.errors import BadInput
from web.models import Role
from web.voice import desk


@bp.get("/sandbox/phone")
@requires(Role.OPERATOR)
def phone() -> Any:
    """The phone page: pick a line to call, then talk to its flow with the keypad."""
    lines = list(db_session().scalars(select(VoiceLine).order_by(VoiceLine.address)))
    return render_template("console/phone.html", lines=lines, phone=request.args.get("phone", ""))


@bp.post("/sandbox/phone/call")
@requires(Role.OPERATOR)
def phone_call() -> Any:
    """Call one of our lines as a voter; the answer is the call's first steps."""
    body = request.get_json(silent=True) or {}
    parser = PhoneParser(runtime().settings.default_region)
    try:
        voter = parser.parse(str(body.get("phone", ""))).e164
    except InvalidPhone as exc:
        raise BadInput(f"phone: {exc.reason}", field="phone") from None
    line = str(body.get("line", ""))
    sid = "CA" + secrets.token_hex(16)
    req = VoiceRequest(call_sid=sid, from_phone=voter, to=line, direction="inbound", call_status="ringing")
    return _steps(lambda d: d.answer(req, None, None), sid)


@bp.post("/sandbox/phone/step")
@requires(Role.OPERATOR)
def phone_step() -> Any:
    """The keys the voter pressed (or none) for the step whose action URL is given."""
    body = request.get_json(silent=True) or {}
    call_id, step, signature = _reference(str(body.get("action", "")))
    sid = str(body.get("sid", ""))
    digits = str(body.get("digits", ""))
    if digits and not all(ch in "0123456789*#" for ch in digits):
        raise BadInput("digits: only 0-9, * and # are keys on a phone", field="digits")
    req = VoiceRequest(
        call_sid=sid, from_phone=None, to="", direction="inbound", call_status="in-progress", digits=digits
    )
    return _steps(lambda d: d.step(req, call_id, step, signature), sid)


@bp.post("/sandbox/phone/hangup")
@requires(Role.OPERATOR)
def phone_hangup() -> Any:
    """The voter hung up: the call completes and its flow ends where it was."""
    body = request.get_json(silent=True) or {}
    sid = str(body.get("sid", ""))
    update = CallStatusUpdate(call_sid=sid, status="completed")
    with runtime().db.session(write=True) as db:
        call = desk(db).status(update, None)
        ended = call is not None
    return jsonify({"ended": ended})


def _steps(run: Any, sid: str) -> Any:
    rt = runtime()
    try:
        with rt.db.session(write=True) as db:
            answered: Answered = run(desk(db))
            call_id = answered.call.id if answered.call else None
    except CallRefused as exc:
        raise BadInput(str(exc), field="action") from None
    queue_sends(rt.redis, answered.outbound)
    steps = [s.to_dict() for s in phone_script.read(answered.twiml)]
    audio = rt.services.get("voice:render")
    if audio is not None:
        _add_audio(steps, audio)
    return jsonify({"sid": sid, "call": call_id, "twiml": answered.twiml, "steps": steps})


def _add_audio(steps: list[dict[str, Any]], render: Any) -> None:
    """Give every spoken text the URL of its rendered audio, so the browser can play it."""
    for step in steps:
        if step["kind"] == "say" and step.get("text"):
            step["audio"] = render(step["text"], (step.get("language") or "en").split("-")[0])
        _add_audio(step.get("prompts", []), render)


def _reference(action: str) -> tuple[int, int, str]:
    query = parse_qs(urlsplit(action).query)
    try:
        return int(query["c"][0]), int(query["n"][0]), query["s"][0]
    except (KeyError, ValueError, IndexError):
        raise BadInput("action: not a step URL of this call", field="action") from None
