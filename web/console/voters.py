"""The voter page: one contact's details, tags, consent and timeline, and what to do next.

The timeline (``bot.timeline``) is newest first, a page at a time, with one query per
kind of entry whatever the voter's history. Operators and above send the voter a message
(free text, or an approved template outside WhatsApp's 24-hour window) through the usual
queue, or take the conversation over: that opens a handoff case in the inbox, assigned
to them, and the bot stays quiet until the case is closed.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot import handoffs
from bot.db import utcnow
from bot.direct import CHANNELS, DirectSendError, direct_message
from bot.models import Contact, HandoffCase
from bot.outbox import queue_sends, whatsapp_window_closes
from bot.timeline import Cursor, page
from web.auth.access import requires
from web.console import bp
from web.console.replies import approved_templates, chosen_template, filled_template, refusal
from web.context import db_session, runtime
from web.errors import BadInput, NotFound
from web.models import Role

PAGE = 50  # timeline entries per page


@bp.get("/contacts/<int:contact_id>")
@requires(Role.VIEWER)
def voter(contact_id: int) -> Any:
    """A voter's details and timeline (``?before=`` pages to older entries)."""
    s = db_session()
    contact = s.scalar(select(Contact).where(Contact.id == contact_id).options(selectinload(Contact.tags)))
    if contact is None:
        raise NotFound(f"There is no contact {contact_id}.")
    before = None
    if request.args.get("before"):
        try:
            before = Cursor.parse(request.args["before"])
        except ValueError as exc:
            raise BadInput(str(exc), field="before") from None
    entries = page(s, contact_id, before=before, limit=PAGE)
    cases = s.scalars(
        select(HandoffCase).where(HandoffCase.contact_id == contact_id).order_by(HandoffCase.id.desc()).limit(20)
    ).all()
    closes = whatsapp_window_closes(s, contact_id)
    return render_template(
        "console/voter.html",
        contact=contact,
        timeline=entries,
        first_page=before is None,
        open_case=next((c for c in cases if c.status == "open"), None),
        note=next((c.note for c in cases if c.note), None),
        channels=CHANNELS,
        window_closes=closes,
        window_open=closes is not None and closes > utcnow(),
        templates=approved_templates(s),
        chosen=chosen_template(s, request.args.get("template")),
    )


@bp.post("/contacts/<int:contact_id>/<any(message, template, 'take-over'):action>")
@requires(Role.OPERATOR)
def voter_action(contact_id: int, action: str) -> Any:
    """Send the voter a message or a template, or take the conversation over."""
    s = db_session()
    phone = s.scalar(select(Contact.phone).where(Contact.id == contact_id))
    if phone is None:
        raise NotFound(f"There is no contact {contact_id}.")
    form = request.form
    try:
        if action == "take-over":
            case, new = handoffs.take_over(s, contact_id, agent_id=g.user.id)
            s.commit()
            if new:
                flash(
                    f"You took over the conversation with {phone}: the bot stays quiet until you close the case.",
                    "info",
                )
            else:
                flash(f"{phone} already has an open case: here it is.", "info")
            return redirect(url_for("console.inbox_case", case_id=case.id))
        if action == "message":
            message = direct_message(s, contact_id, form.get("text", ""), form.get("channel", ""))
        else:
            text, template = filled_template(s, form)
            message = direct_message(s, contact_id, text, "whatsapp", template=template)
        s.commit()
        queue_sends(runtime().redis, [message.id])
        flash(f"Your {'template' if action == 'template' else 'message'} is queued (on {message.channel}).", "info")
    except DirectSendError as exc:
        s.rollback()
        flash(refusal(exc), "error")
        if action == "template" and form.get("template"):
            return redirect(url_for("console.voter", contact_id=contact_id, template=form["template"]))
    return redirect(url_for("console.voter", contact_id=contact_id))
