"""The inbox: conversations handed to people, and the page where an agent answers one.

A case is opened by a flow's ``handoff`` node or by an agent's "take over" on the voter
page (``web.console.voters``). Everyone may read the inbox; operators and above reply,
write the note, take a case and close it, through POST forms with the session's CSRF
token. The work is done by ``bot.handoffs`` (the same calls as the REST API), and
replies take the queue path of every send (``bot.outbox.queue_sends``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import case, func, select

from bot import handoffs
from bot.db import utcnow
from bot.direct import DirectSendError
from bot.models import Contact, HandoffCase, Message
from bot.outbox import queue_sends, whatsapp_window_closes
from web.auth.access import requires
from web.console import bp
from web.console.replies import approved_templates, chosen_template, filled_template, refusal
from web.context import db_session, runtime
from web.errors import NotFound
from web.models import Role, User

TABS = ("mine", "all", "closed")
LIMIT = 100  # cases a tab shows (the "mine" tab holds at most this many)
HISTORY = 200  # messages the case page shows, the newest that match the filters
CHANNELS = ("whatsapp", "sms", "voice")


@dataclasses.dataclass(frozen=True)
class Row:
    """One case in a tab of the inbox."""

    case: HandoffCase
    contact: Contact
    assignee: str | None
    last_in: dt.datetime | None  # the voter's last message


@bp.get("/inbox")
@requires(Role.VIEWER)
def inbox() -> Any:
    """Open cases assigned to me, all open cases, or the recently closed ones."""
    s = db_session()
    tab = request.args.get("tab", "mine")
    if tab not in TABS:
        tab = "mine"
    is_open = HandoffCase.status == "open"
    mine = is_open & (HandoffCase.assignee_id == g.user.id)
    counts = s.execute(
        select(func.count(), func.coalesce(func.sum(case((HandoffCase.assignee_id == g.user.id, 1), else_=0)), 0))
        .select_from(HandoffCase)
        .where(is_open)
    ).one()
    stmt = select(HandoffCase, Contact).join(Contact, Contact.id == HandoffCase.contact_id)
    if tab == "closed":
        stmt = stmt.where(HandoffCase.status == "closed").order_by(HandoffCase.closed_at.desc(), HandoffCase.id.desc())
    else:
        # Who has waited longest comes first.
        stmt = stmt.where(mine if tab == "mine" else is_open).order_by(HandoffCase.opened_at, HandoffCase.id)
    found = s.execute(stmt.limit(LIMIT)).all()
    contact_ids = {c.id for _case, c in found}
    last_in: dict[int, dt.datetime] = dict(
        s.execute(  # type: ignore[arg-type]
            select(Message.contact_id, func.max(Message.created_at))
            .where(Message.contact_id.in_(contact_ids), Message.direction == "in")
            .group_by(Message.contact_id)
        ).all()
        if contact_ids
        else []
    )
    emails = _emails({c.assignee_id for c, _contact in found})
    rows = [Row(c, contact, emails.get(c.assignee_id), last_in.get(contact.id)) for c, contact in found]
    return render_template(
        "console/inbox.html", tab=tab, rows=rows, open_count=counts[0], mine_count=counts[1], limit=LIMIT
    )


def _emails(user_ids: set[int | None]) -> dict[int | None, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return dict(db_session().execute(select(User.id, User.email).where(User.id.in_(ids))).all())  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class HistoryFilter:
    """The chat history's filters: a channel and a range of days (UTC), each optional."""

    channel: str = ""
    start: dt.date | None = None
    end: dt.date | None = None

    @classmethod
    def from_args(cls, args: Any) -> tuple[HistoryFilter, str | None]:
        """The filters from a query string, and a message naming the field when one is wrong."""
        channel = args.get("channel", "")
        if channel not in ("", *CHANNELS):
            return cls(), f"Channel: must be one of {', '.join(CHANNELS)}, got {channel!r}."
        days: dict[str, dt.date | None] = {}
        for key, label in (("from", "From"), ("to", "To")):
            raw = args.get(key, "").strip()
            try:
                days[key] = dt.date.fromisoformat(raw) if raw else None
            except ValueError:
                return cls(channel), f"{label}: write a date as YYYY-MM-DD, got {raw!r}."
        start, end = days["from"], days["to"]
        if start and end and start > end:
            return cls(channel), f"To: must not be before From ({start.isoformat()}), got {end.isoformat()}."
        return cls(channel, start, end), None

    def conditions(self) -> list[Any]:
        """SQL conditions on ``Message`` for these filters."""
        found: list[Any] = []
        if self.channel:
            found.append(Message.channel == self.channel)
        if self.start:
            found.append(Message.created_at >= dt.datetime.combine(self.start, dt.time(), dt.UTC))
        if self.end:
            next_day = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), dt.UTC)
            found.append(Message.created_at < next_day)
        return found


@bp.get("/inbox/<int:case_id>")
@requires(Role.VIEWER)
def inbox_case(case_id: int) -> Any:
    """One case: the voter, the chat history (filtered), the reply box, the note, close."""
    s = db_session()
    found = s.get(HandoffCase, case_id)
    if found is None:
        raise NotFound(f"There is no case {case_id}.")
    contact = s.get(Contact, found.contact_id)
    history, problem = HistoryFilter.from_args(request.args)
    stmt = (
        select(Message)
        .where(Message.contact_id == found.contact_id, *history.conditions())
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(HISTORY + 1)
    )
    newest = s.scalars(stmt).all()
    to = handoffs.route(s, found)
    closes = whatsapp_window_closes(s, found.contact_id) if to.channel == "whatsapp" else None
    return render_template(
        "console/case.html",
        case=found,
        contact=contact,
        assignee=_emails({found.assignee_id}).get(found.assignee_id),
        messages=list(reversed(newest[:HISTORY])),
        more=len(newest) > HISTORY,
        history=history,
        problem=problem,
        channels=CHANNELS,
        route=to,
        window_closes=closes,
        window_open=to.channel != "whatsapp" or (closes is not None and closes > utcnow()),
        templates=approved_templates(s) if to.channel == "whatsapp" else [],
        chosen=chosen_template(s, request.args.get("template")),
        max_note=handoffs.MAX_NOTE,
        kept=_kept(),
    )


@bp.post("/inbox/<int:case_id>/<any(reply, template, note, assign, close):action>")
@requires(Role.OPERATOR)
def inbox_action(case_id: int, action: str) -> Any:
    """Reply (free text or a template), write the note, take the case, or close it."""
    s = db_session()
    found = s.get(HandoffCase, case_id)
    if found is None:
        raise NotFound(f"There is no case {case_id}.")
    phone = s.scalar(select(Contact.phone).where(Contact.id == found.contact_id))
    form = request.form
    try:
        if action in ("reply", "template"):
            text, template = (form.get("text", ""), None) if action == "reply" else filled_template(s, form)
            message = handoffs.reply(s, case_id, text, agent_id=g.user.id, template=template)
            s.commit()
            queue_sends(runtime().redis, [message.id])
            said = "template" if template else "message"
            flash(f"Your {said} to {phone} is queued (on {message.channel}).", "info")
        elif action == "note":
            note = handoffs.set_note(s, case_id, form.get("note")).note
            s.commit()
            flash(f"Note saved: {note}." if note else "Note cleared.", "info")
        elif action == "assign":
            handoffs.assign(s, case_id, agent_id=g.user.id)
            s.commit()
            flash(f"The case of {phone} is yours now.", "info")
        else:
            handoffs.close(s, case_id, note=form.get("note"), agent_id=g.user.id)
            s.commit()
            flash(f"Closed: {phone} is back with the bot and available to campaigns again.", "info")
            return redirect(url_for("console.inbox", tab="mine"))
    except (handoffs.CaseError, DirectSendError) as exc:
        s.rollback()
        flash(refusal(exc), "error")
        if action == "template" and form.get("template"):
            # Back to the same template's form, to fill in what was missing.
            return redirect(url_for("console.inbox_case", case_id=case_id, template=form["template"], **_kept()))
    return redirect(url_for("console.inbox_case", case_id=case_id, **_kept()))


def _kept() -> dict[str, Any]:
    """The chat history's filters, kept across a form's post."""
    return {k: v for k, v in request.args.items() if k in ("channel", "from", "to") and v}
