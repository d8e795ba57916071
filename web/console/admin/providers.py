"""Provider settings: what is configured (never the auth token), and a "Test connection" button.

The settings come from the environment (read once at start, ``bot.settings``), so the page
shows them and says which variable to change; the test is ``bot.provider_check``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import g, request
from sqlalchemy import func, select

from bot import provider_check
from bot.models import Sender
from bot.senders import PROVIDERS
from web.auth.access import requires
from web.console import bp
from web.console.admin import page
from web.context import db_session, runtime
from web.models import Role

log = logging.getLogger("canvass.admin")
WEBHOOKS = (
    ("/webhooks/twilio/messages", "inbound SMS and WhatsApp (set on each number)"),
    ("/webhooks/twilio/message-status", "delivery statuses (set on every send)"),
    ("/webhooks/twilio/voice", "incoming calls (set on each voice number)"),
    ("/webhooks/twilio/call-status", "call statuses (set on every call)"),
)


def _page(result: provider_check.CheckResult | None = None, errors: dict[str, str] | None = None) -> Any:
    settings = runtime().settings
    senders = dict(db_session().execute(select(Sender.provider, func.count()).group_by(Sender.provider)).all())
    return page(
        "console/admin/providers.html",
        settings=settings,
        providers=PROVIDERS,
        senders=senders,
        webhooks=[(settings.public_base_url + path, what) for path, what in WEBHOOKS],
        result=result,
        errors=errors,
    )


@bp.get("/admin/providers")
@requires(Role.ADMIN)
def providers() -> Any:
    """The providers canvass is configured for, and how."""
    return _page()


@bp.post("/admin/providers/test")
@requires(Role.ADMIN)
def provider_test() -> Any:
    """Try a provider's connection now and show what it answered."""
    name = request.form.get("provider", "")
    if name not in PROVIDERS:
        return _page(errors={"provider": f"provider: one of {', '.join(PROVIDERS)}, got {name!r}"})
    result = provider_check.check(runtime().settings, name)
    log.info("provider test %s by %s: %s", name, g.user.email, "ok" if result.ok else result.message)
    return _page(result)
