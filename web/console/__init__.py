"""The admin console's pages (server-rendered)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from bot.models import ConsentStatus, Contact
from bot.segments import SegmentError, compile_segment
from web.auth.access import requires
from web.context import db_session
from web.models import Role

bp = Blueprint("console", __name__)
PAGE = 50


@bp.get("/contacts")
@requires(Role.VIEWER)
def contacts() -> Any:
    """Search contacts by phone or name, filter by tag and consent."""
    s = db_session()
    q = request.args.get("q", "").strip()
    tag = request.args.get("tag", "").strip()
    consent = request.args.get("consent", "").strip()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    conditions: list[Any] = []
    spec: list[dict[str, Any]] = []
    if tag:
        name, _, value = tag.partition("=")
        spec.append({"tag": name, "eq": value} if value else {"tag": name})
    if consent:
        spec.append({"consent": consent})
    error = None
    try:
        if spec:
            conditions.append(compile_segment({"all": spec}, dialect=s.get_bind().dialect.name))
    except SegmentError as exc:
        error = str(exc)
    if q:
        like = f"%{q}%"
        conditions.append(or_(Contact.phone.like(like), Contact.name.ilike(like)))
    stmt = select(Contact).where(*conditions) if not error else select(Contact).where(Contact.id < 0)
    total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = s.scalars(
        stmt.options(selectinload(Contact.tags)).order_by(Contact.id.desc()).limit(PAGE).offset((page - 1) * PAGE)
    ).all()
    return render_template(
        "console/contacts.html",
        contacts=rows,
        total=total,
        page=page,
        pages=max((total + PAGE - 1) // PAGE, 1),
        q=q,
        tag=tag,
        consent=consent,
        error=error,
        statuses=[c.value for c in ConsentStatus],
    )


# More pages on the same blueprint, one module per area.
from web.console import (  # noqa: E402, F401
    admin,
    audio,
    campaigns,
    dashboard,
    flows,
    inbox,
    phone,
    sandbox,
    template_form,
    templates_pages,
    voters,
    wizard,
)
