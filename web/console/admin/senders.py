"""Senders and numbers: add, edit, and mark healthy or unhealthy (``bot.senders``).

A sender marked unhealthy cannot be chosen for a campaign; the dashboard lists it under
"needs attention" until it is marked healthy again.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, request
from sqlalchemy import func, select

from bot import senders as domain
from bot.models import Sender
from campaigns.models import Campaign
from web import audit
from web.auth.access import requires
from web.console import bp
from web.console.admin import page
from web.context import db_session, runtime
from web.errors import NotFound
from web.models import Role

# What the forms call each field, mapped from the names bot.senders raises with.
FIELDS = {"rate_per_s": "rate", "messaging_service_sid": "messaging_service"}


def _sender(sender_id: int) -> Sender:
    sender = db_session().get(Sender, sender_id)
    if sender is None:
        raise NotFound(f"There is no sender {sender_id}.")
    return sender


def _listing(**ctx: Any) -> Any:
    s = db_session()
    rows = s.scalars(select(Sender).order_by(Sender.channel, Sender.id)).all()
    used = dict(
        s.execute(
            select(Campaign.sender_id, func.count()).where(Campaign.sender_id.is_not(None)).group_by(Campaign.sender_id)
        ).all()
    )
    return page(
        "console/admin/senders.html",
        senders=rows,
        used=used,
        channels=domain.CHANNELS,
        providers=domain.PROVIDERS,
        default_provider=runtime().settings.provider,
        **ctx,
    )


@bp.get("/admin/senders")
@requires(Role.ADMIN)
def senders() -> Any:
    """Every sender with its channel, provider, rate and health; a form to add one."""
    return _listing()


@bp.post("/admin/senders")
@requires(Role.ADMIN)
def sender_add() -> Any:
    """Add a sender (the number as people write it; stored in E.164)."""
    s, form, rt = db_session(), request.form, runtime()
    try:
        sender = domain.add_sender(
            s,
            address=form.get("address", ""),
            channel=form.get("channel", ""),
            provider=form.get("provider", ""),
            region=rt.settings.default_region,
            name=form.get("name"),
            rate=form.get("rate", ""),
            messaging_service=form.get("messaging_service"),
        )
        audit.record(s, g.user, "sender.add", domain.describe(sender), rate=sender.rate_per_s, name=sender.name)
        s.commit()
    except domain.SenderError as exc:
        s.rollback()
        return _listing(errors={exc.field: str(exc)}, form=form)
    flash(f"Added {domain.describe(sender)}.", "info")
    return redirect("/admin/senders")


def _edit_page(sender: Sender, **ctx: Any) -> Any:
    campaigns = db_session().scalar(select(func.count()).where(Campaign.sender_id == sender.id)) or 0
    return page("console/admin/sender.html", sender=sender, campaigns=campaigns, providers=domain.PROVIDERS, **ctx)


@bp.get("/admin/senders/<int:sender_id>")
@requires(Role.ADMIN)
def sender_page(sender_id: int) -> Any:
    """One sender: edit its provider, label, rate and Messaging Service; its health."""
    return _edit_page(_sender(sender_id))


@bp.post("/admin/senders/<int:sender_id>")
@requires(Role.ADMIN)
def sender_edit(sender_id: int) -> Any:
    """Save a sender's changes."""
    s, form = db_session(), request.form
    sender = _sender(sender_id)
    try:
        changed = domain.update_sender(
            s,
            sender,
            provider=form.get("provider", ""),
            name=form.get("name"),
            rate=form.get("rate", ""),
            messaging_service=form.get("messaging_service"),
        )
        if changed:
            audit.record(s, g.user, "sender.edit", domain.describe(sender), **changed)
        s.commit()
    except domain.SenderError as exc:
        s.rollback()
        return _edit_page(_sender(sender_id), errors={FIELDS.get(exc.field, exc.field): str(exc)}, form=form)
    flash("Saved." if changed else "Nothing changed.", "info")
    return redirect(f"/admin/senders/{sender.id}")


@bp.post("/admin/senders/<int:sender_id>/health")
@requires(Role.ADMIN)
def sender_health(sender_id: int) -> Any:
    """Mark a sender healthy, or unhealthy with a note saying why."""
    s, form = db_session(), request.form
    sender = _sender(sender_id)
    healthy = form.get("healthy") == "1"
    try:
        domain.set_health(s, sender, healthy=healthy, note=form.get("note"))
        audit.record(s, g.user, "sender.health", domain.describe(sender), healthy=healthy, note=sender.health_note)
        s.commit()
    except domain.SenderError as exc:
        s.rollback()
        return _edit_page(_sender(sender_id), errors={exc.field: str(exc)}, form=form)
    flash(f"{domain.describe(sender)} is marked {'healthy' if healthy else 'unhealthy'}.", "info")
    return redirect("/admin/senders" if form.get("back") == "list" else f"/admin/senders/{sender.id}")
