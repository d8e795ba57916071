"""The audit trail: every change made in the administration pages, newest first."""

from __future__ import annotations

from typing import Any

from flask import request

from web import audit
from web.auth.access import requires
from web.console import bp
from web.console.admin import page
from web.context import db_session
from web.models import Role

AREAS = ("user", "token", "sender", "policy", "price")
LIMIT = 200


@bp.get("/admin/audit")
@requires(Role.ADMIN)
def audit_trail() -> Any:
    """The last 200 changes; ``?area=`` keeps one area's."""
    area = request.args.get("area", "")
    events = audit.recent(db_session(), limit=LIMIT, action=area if area in AREAS else None)
    return page("console/admin/audit.html", events=events, areas=AREAS, area=area, limit=LIMIT)
