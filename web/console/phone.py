"""The sandbox phone: take a call from a flow in the browser, with a keypad and audio.

The phone runs the same ``CallDesk`` as Twilio's webhooks and gets the same TwiML; the
server reads that TwiML into steps (``ivr.phone_script``) and adds the rendered audio of
each spoken text, and the page's script plays them and sends the keys back. Requests
carry the console's login and CSRF token instead of Twilio's signature; the signed step
reference inside the action URL is checked exactly as for Twilio.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import jsonify, render_template, request
from sqlalchemy import select

from bot.db import utcnow
from bot.models import Contact, Sender
from bot.outbox import queue_sends
from bot.phones import InvalidPhone, PhoneParser
from campaigns import call_tracking
from campaigns.models import Campaign
from ivr import phone_script
from ivr.calls import Answered, CallRefused
from ivr.models import Call, VoiceLine
from ivr.providers.base import CallStatusUpdate, VoiceRequest
from web.auth.access import requires
from web.console import bp
from web.context import db_session, runtime
from web.errors import BadInput
from web.models import Role
from web.voice import apply_status, call_links, desk, queue_callbacks

# A sandbox call nobody picks up stops ringing on the page after this long.
RINGING_FOR_S = 600


@bp.get("/sandbox/phone")
@requires(Role.OPERATOR)
def phone() -> Any:
    """The phone page: pick a line to call, then talk to its flow with the keypad."""
    lines = list(db_session().scalars(select(VoiceLine).where(_sandbox_line()).order_by(VoiceLine.address)))
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
    if db_session().scalar(select(VoiceLine.id).where(VoiceLine.address == line, _sandbox_line())) is None:
        # A real number's flow may send real messages or place real calls: the sandbox keeps to its own.
        raise BadInput(f"line: {line!r} is not a voice line of a sandbox voice sender", field="line")
    sid = "CA" + secrets.token_hex(16)
    req = VoiceRequest(call_sid=sid, from_phone=voter, to=line, direction="inbound", call_status="ringing")
    return _steps(lambda d: d.answer(req, None, None), sid)


@bp.post("/sandbox/phone/step")
@requires(Role.OPERATOR)
def phone_step() -> Any:
    """The keys the voter pressed (or none) for the step whose action URL is given."""
    body = request.get_json(silent=True) or {}
    call_id, step, signature = _reference(str(body.get("action", "")))
    sid = _sandbox_sid(str(body.get("sid", "")))
    digits = str(body.get("digits", ""))
    if digits and not all(ch in "0123456789*#" for ch in digits):
        raise BadInput("digits: only 0-9, * and # are keys on a phone", field="digits")
    req = VoiceRequest(
        call_sid=sid, from_phone=None, to="", direction="inbound", call_status="in-progress", digits=digits
    )
    return _steps(lambda d: d.step(req, call_id, step, signature), sid)


@bp.get("/sandbox/phone/ringing")
@requires(Role.OPERATOR)
def phone_ringing() -> Any:
    """Campaign calls ringing this voter's phone (placed by the sandbox provider, not answered yet)."""
    try:
        voter = PhoneParser(runtime().settings.default_region).parse(request.args.get("phone", "")).e164
    except InvalidPhone:
        return jsonify({"calls": []})
    stmt = (
        select(Call.id, Call.sid, Sender.address, Campaign.name)
        .join(Contact, Contact.id == Call.contact_id)
        .join(Sender, Sender.id == Call.sender_id)
        .outerjoin(Campaign, Campaign.id == Call.campaign_id)
        .where(Contact.phone == voter, Sender.provider == "sandbox", Call.direction == "outbound")
        .where(Call.status.in_(("queued", "ringing")), Call.sid.is_not(None), Call.step == 0)
        .where(Call.created_at >= utcnow() - dt.timedelta(seconds=RINGING_FOR_S))
        .order_by(Call.id)
    )
    calls = [
        {"call": c, "sid": sid, "from": sender, "campaign": name} for c, sid, sender, name in db_session().execute(stmt)
    ]
    return jsonify({"calls": calls})


@bp.post("/sandbox/phone/answer")
@requires(Role.OPERATOR)
def phone_answer() -> Any:
    """Pick up a ringing campaign call: its flow starts, as when a voter answers Twilio's call."""
    call = _ringing(request.get_json(silent=True) or {})
    req = VoiceRequest(
        call_sid=call["sid"],
        from_phone=call["from"],
        to=call["to"],
        direction="outbound-api",
        call_status="in-progress",
    )
    return _steps(lambda d: d.answer(req, call["id"], call_links().sign(call["id"], 0)), call["sid"])


@bp.post("/sandbox/phone/decline")
@requires(Role.OPERATOR)
def phone_decline() -> Any:
    """Reject a ringing campaign call: Twilio would report it busy (the campaign tries again later)."""
    call = _ringing(request.get_json(silent=True) or {})
    return jsonify({"ended": _status(call["sid"], "busy")})


@bp.post("/sandbox/phone/hangup")
@requires(Role.OPERATOR)
def phone_hangup() -> Any:
    """The call ended (the voter hung up, or the flow did): it completes, its flow ends where it was."""
    body = request.get_json(silent=True) or {}
    return jsonify({"ended": _status(_sandbox_sid(str(body.get("sid", ""))), "completed")})


def _status(sid: str, status: str) -> bool:
    return apply_status(CallStatusUpdate(call_sid=sid, status=status), None)


def _sandbox_line() -> Any:
    """Voice lines whose number is a sandbox voice sender (the phone calls only those)."""
    sandbox = select(Sender.address).where(Sender.provider == "sandbox", Sender.channel == "voice")
    return VoiceLine.address.in_(sandbox)


def _sandbox_sid(sid: str) -> str:
    """``sid`` when it is a call the sandbox made (its sender is a sandbox sender); else a 400."""
    provider = db_session().scalar(
        select(Sender.provider).join(Call, Call.sender_id == Sender.id).where(Call.sid == sid)
    )
    if provider != "sandbox":
        raise BadInput("sid: not a call of the sandbox phone", field="sid")
    return sid


def _ringing(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("call")
    if not isinstance(raw, int):
        raise BadInput("call: the id of a ringing call", field="call")
    s = db_session()
    call = s.get(Call, raw)
    if call is None or call.sid is None or call.status not in ("queued", "ringing") or call.step:
        raise BadInput(f"call: {raw} is not ringing", field="call")
    sender = s.get(Sender, call.sender_id) if call.sender_id else None
    contact = s.get(Contact, call.contact_id)
    if sender is None or sender.provider != "sandbox" or contact is None:
        raise BadInput(f"call: {raw} was not placed by the sandbox", field="call")
    return {"id": call.id, "sid": call.sid, "from": sender.address, "to": contact.phone}


def _steps(run: Any, sid: str) -> Any:
    rt = runtime()
    try:
        with rt.db.session(write=True) as db:
            answered: Answered = run(desk(db, play_audio=False))
            call_id = answered.call.id if answered.call else None
            followed = call_tracking.follow(db, answered.call) if answered.call is not None else None
    except CallRefused as exc:
        raise BadInput(str(exc), field="action") from None
    queue_sends(rt.redis, answered.outbound)
    queue_callbacks(rt.redis, answered.callbacks)
    call_tracking.after_commit(rt, followed)
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
