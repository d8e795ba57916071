"""The admin console's pages (server-rendered)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("console", __name__)


# The pages, on the same blueprint, one module per area.
from web.console import (  # noqa: E402, F401
    admin,
    audio,
    campaigns,
    contacts,
    dashboard,
    flows,
    imports,
    inbox,
    phone,
    sandbox,
    segments,
    template_form,
    templates_pages,
    voters,
    wizard,
)
