"""REST API: a voter's timeline and the handoff cases (the inbox screens come later)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from sqlalchemy import select

from bot.handoffs import CaseError, close, reply
from bot.models import Contact, HandoffCase
from bot.outbox import queue_sends
from bot.timeline import timeline
from web.api import bp
from web.auth.access import requires
from web.context import db_session, runtime
from web.errors import BadInput, NotFound
from web.models import Role


@bp.get("/contacts/<int:contact_id>/timeline")
@requires(Role.VIEWER)
def contact_timeline(contact_id: int) -> Any:
    """Messages in and out with statuses, funnel steps, consent changes and handoff cases."""
    if db_session().get(Contact, contact_id) is None:
        raise NotFound(f"no contact {contact_id}")
    return jsonify({"contact_id": contact_id, "timeline": timeline(db_session(), contact_id)})


@bp.get("/handoffs")
@requires(Role.OPERATOR)
def list_handoffs() -> Any:
    """Handoff cases, open ones by default (``?status=closed`` for the others)."""
    status = request.args.get("status", "open")
    if status not in ("open", "closed"):
        raise BadInput("must be open or closed", field="status")
    cases = db_session().scalars(select(HandoffCase).where(HandoffCase.status == status).order_by(HandoffCase.id)).all()
    return jsonify(
        {
            "handoffs": [
                {
                    "id": c.id,
                    "contact_id": c.contact_id,
                    "status": c.status,
                    "note": c.note,
                    "reason": c.reason,
                    "assignee_id": c.assignee_id,
                    "opened_at": c.opened_at.isoformat().replace("+00:00", "Z"),
                }
                for c in cases
            ]
        }
    )


@bp.post("/handoffs/<int:case_id>/reply")
@requires(Role.OPERATOR)
def reply_to_handoff(case_id: int) -> Any:
    """Send the voter a message as an agent: ``{"text": "..."}``."""
    body = request.get_json(silent=True) or {}
    try:
        message = reply(db_session(), case_id, str(body.get("text", "")), agent_id=g.user.id)
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    except CaseError as exc:
        raise BadInput(str(exc), field=exc.field) from None
    db_session().commit()
    queue_sends(runtime().redis, [message.id])
    return jsonify({"message_id": message.id, "status": message.status}), 201


@bp.post("/handoffs/<int:case_id>/close")
@requires(Role.OPERATOR)
def close_handoff(case_id: int) -> Any:
    """Close a case, with an optional note of up to 30 characters: ``{"note": "..."}``."""
    body = request.get_json(silent=True) or {}
    try:
        case = close(db_session(), case_id, note=body.get("note"), agent_id=g.user.id)
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    except CaseError as exc:
        raise BadInput(str(exc), field=exc.field) from None
    db_session().commit()
    return jsonify({"id": case.id, "status": case.status, "note": case.note})


@bp.post("/contacts/<int:contact_id>/messages")
@requires(Role.OPERATOR)
def send_direct(contact_id: int) -> Any:
    """Send one message to one voter through the usual queue: ``{"text": "...", "channel": "sms"}``."""
    from bot.direct import DirectSendError, direct_message

    body = request.get_json(silent=True) or {}
    try:
        message = direct_message(db_session(), contact_id, str(body.get("text", "")), str(body.get("channel", "")))
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    except DirectSendError as exc:
        raise BadInput(str(exc), field=exc.field) from None
    db_session().commit()
    queue_sends(runtime().redis, [message.id])
    return jsonify({"message_id": message.id, "status": message.status, "channel": message.channel}), 201
