"""REST API: the inbox's handoff cases (list, reply, note, assign, close) and one-off messages."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from sqlalchemy import select

from bot import handoffs
from bot.direct import DirectSendError, direct_message
from bot.models import HandoffCase
from bot.outbox import queue_sends
from web.api import bp, json_body, one_or_404, text_field
from web.api.campaigns import iso
from web.api.paging import keyset
from web.auth.access import requires
from web.context import db_session, runtime
from web.errors import BadInput, NotFound
from web.models import Role


def case_json(c: HandoffCase) -> dict[str, Any]:
    """A handoff case as the API shows it."""
    return {
        "id": c.id,
        "contact_id": c.contact_id,
        "status": c.status,
        "note": c.note,
        "reason": c.reason,
        "assignee_id": c.assignee_id,
        "opened_at": iso(c.opened_at),
        "closed_at": iso(c.closed_at),
    }


def _acting(work: Any) -> Any:
    """Run a ``bot.handoffs`` call: an unknown case is a 404, a refusal names its field."""
    try:
        return work()
    except LookupError as exc:
        raise NotFound(str(exc), field="case_id") from None
    except handoffs.CaseError as exc:
        db_session().rollback()
        raise BadInput(str(exc), field=exc.field) from None


@bp.get("/handoffs")
@requires(Role.VIEWER)
def list_handoffs() -> Any:
    """Handoff cases, oldest first: open ones by default (``?status=closed``); ``?mine=true`` for the caller's."""
    status = request.args.get("status", "open")
    if status not in ("open", "closed"):
        raise BadInput(f"must be open or closed, got {status!r}", field="status")
    mine = request.args.get("mine", "false")
    if mine not in ("true", "false"):
        raise BadInput(f"must be true or false, got {mine!r}", field="mine")
    stmt = select(HandoffCase).where(HandoffCase.status == status)
    if mine == "true":
        stmt = stmt.where(HandoffCase.assignee_id == g.user.id)
    shown, cursor = keyset(stmt, HandoffCase.id, descending=False)
    return jsonify({"handoffs": [case_json(c) for c in shown], "next_cursor": cursor})


@bp.get("/handoffs/<int:case_id>")
@requires(Role.VIEWER)
def get_handoff(case_id: int) -> Any:
    """One handoff case."""
    return jsonify(case_json(one_or_404(HandoffCase, case_id, what="handoff case", field="case_id")))


@bp.post("/handoffs/<int:case_id>/reply")
@requires(Role.OPERATOR)
def reply_to_handoff(case_id: int) -> Any:
    """Send the voter a message as an agent: ``{"text": "..."}``."""
    text = text_field(json_body(), "text")
    message = _acting(lambda: handoffs.reply(db_session(), case_id, text, agent_id=g.user.id))
    db_session().commit()
    queue_sends(runtime().redis, [message.id])
    return jsonify({"message_id": message.id, "status": message.status}), 201


@bp.post("/handoffs/<int:case_id>/note")
@requires(Role.OPERATOR)
def note_handoff(case_id: int) -> Any:
    """Write the case's short note about the voter (30 characters at most; empty clears it)."""
    body = json_body()
    if "note" not in body:
        raise BadInput("is missing: send the text, or null to clear it", field="note")
    note = None if body["note"] is None else text_field(body, "note")
    case = _acting(lambda: handoffs.set_note(db_session(), case_id, note))
    db_session().commit()
    return jsonify(case_json(case))


@bp.post("/handoffs/<int:case_id>/assign")
@requires(Role.OPERATOR)
def assign_handoff(case_id: int) -> Any:
    """Make an open case the caller's own."""
    case = _acting(lambda: handoffs.assign(db_session(), case_id, agent_id=g.user.id))
    db_session().commit()
    return jsonify(case_json(case))


@bp.post("/handoffs/<int:case_id>/close")
@requires(Role.OPERATOR)
def close_handoff(case_id: int) -> Any:
    """Close a case, with an optional note of up to 30 characters: ``{"note": "..."}``."""
    body = json_body(optional=True)
    note = None if body.get("note") is None else text_field(body, "note")
    case = _acting(lambda: handoffs.close(db_session(), case_id, note=note, agent_id=g.user.id))
    db_session().commit()
    return jsonify(case_json(case))


@bp.post("/contacts/<int:contact_id>/messages")
@requires(Role.OPERATOR)
def send_direct(contact_id: int) -> Any:
    """Send one message to one voter through the usual queue: ``{"text": "...", "channel": "sms"}``."""
    body = json_body()
    text, channel = text_field(body, "text"), text_field(body, "channel")
    try:
        message = direct_message(db_session(), contact_id, text, channel)
    except LookupError as exc:
        raise NotFound(str(exc), field="contact_id") from None
    except DirectSendError as exc:
        db_session().rollback()
        raise BadInput(str(exc), field=exc.field) from None
    db_session().commit()
    queue_sends(runtime().redis, [message.id])
    return jsonify({"message_id": message.id, "status": message.status, "channel": message.channel}), 201
