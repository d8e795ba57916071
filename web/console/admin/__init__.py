"""The administration pages, for admins only.

Users, senders, providers, send policy, prices, and the audit trail of every change
made here.

Each area is one module on the console's blueprint, under ``/admin/...``. Every form
posts with the session's CSRF token; bad input re-renders the page with a 422, each
error next to the field it names and every typed value kept; every change is written to
the audit trail (``web.audit``) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import redirect, render_template

from web.auth.access import requires
from web.console import bp
from web.models import Role

# The pages of the administration, in the order of its menu: (path, label).
PAGES = (
    ("/admin/users", "Users"),
    ("/admin/senders", "Senders"),
    ("/admin/providers", "Providers"),
    ("/admin/send-policy", "Send policy"),
    ("/admin/prices", "Prices"),
    ("/admin/audit", "Audit trail"),
)


def page(
    template: str, *, errors: Mapping[str, str] | None = None, form: Mapping[str, Any] | None = None, **ctx: Any
) -> Any:
    """Render an administration page; with ``errors``, as a 422 that keeps what was typed."""
    body = render_template(template, pages=PAGES, errors=dict(errors or {}), form=dict(form or {}), **ctx)
    return (body, 422) if errors else body


@bp.get("/admin")
@requires(Role.ADMIN)
def admin_home() -> Any:
    """The administration starts with its users."""
    return redirect("/admin/users")


from web.console.admin import audit_log, policy, prices, providers, senders, users  # noqa: E402, F401
