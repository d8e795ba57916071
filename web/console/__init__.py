"""The admin console's pages (server-rendered)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request
from sqlalchemy import func, select

from bot.models import ConsentStatus, Contact, ContactTag
from web.auth.access import requires
from web.context import db_session
from web.models import Role, User
from web.users import UserError, create_user

bp = Blueprint("console", __name__)


@bp.get("/")
@requires(Role.VIEWER)
def dashboard() -> Any:
    """Counts that matter at a glance."""
    s = db_session()
    by_consent = dict(s.execute(select(Contact.consent, func.count()).group_by(Contact.consent)).all())
    top_tags = s.execute(
        select(ContactTag.name, func.count()).group_by(ContactTag.name).order_by(func.count().desc()).limit(8)
    ).all()
    return render_template(
        "console/dashboard.html",
        total=sum(by_consent.values()),
        by_consent=by_consent,
        statuses=[c.value for c in ConsentStatus],
        top_tags=top_tags,
    )


@bp.route("/users", methods=["GET", "POST"])
@requires(Role.ADMIN)
def users() -> Any:
    """List users; admins add new ones."""
    s = db_session()
    if request.method == "POST":
        try:
            create_user(
                s, request.form.get("email", ""), request.form.get("role", ""), request.form.get("password", "")
            )
            s.commit()
            flash(f"Created {request.form.get('email', '').strip().lower()}.", "info")
            return redirect("/users")
        except UserError as exc:
            s.rollback()
            flash(str(exc), "error")
    rows = s.scalars(select(User).order_by(User.email)).all()
    return render_template("console/users.html", users=rows, roles=[r.value for r in Role], me=g.user)


# More pages on the same blueprint, one module per area.
from web.console import campaigns, contacts, flows, imports, inbox, phone, sandbox, segments, voters  # noqa: E402, F401
