"""REST API v1: Bearer tokens, JSON in and out, one module per area.

Every list is paginated the same way (``web.api.paging``); every error has the one shape
``{"error": code, "message": ..., "field": ...}`` made in ``web.errors``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import yaml
from flask import Blueprint, g, jsonify, request

from web.api.openapi import SPEC
from web.auth.access import csrf, public, requires
from web.context import db_session
from web.errors import BadInput, NotFound
from web.models import Role

M = TypeVar("M")
bp = Blueprint("api", __name__)
# The API authenticates with Bearer tokens only (web.auth.access): a browser's cookie
# never authorises it, so a cross-site form cannot act through it and it needs no token.
csrf.exempt(bp)


def one_or_404(model: type[M], row_id: int, *, what: str, field: str) -> M:
    """The row with this id, or a 404 that names the path parameter."""
    row = db_session().get(model, row_id)
    if row is None:
        raise NotFound(f"no {what} {row_id}", field=field)
    return row


def json_body(*, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; with ``optional``, an empty body reads as ``{}``."""
    if optional and not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput("Send a JSON object with Content-Type: application/json.", field="body")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = True, default: str = "") -> str:
    """A field that must be text (not a number, list or null)."""
    value = body.get(name)
    if value is None and not required and name not in body:
        return default
    if not isinstance(value, str):
        raise BadInput("must be text" + ("" if value is not None else ", and it is missing"), field=name)
    return value


def yaml_text_body(what: str) -> str:
    """A document in the YAML file format: sent as YAML, or as JSON with the same keys."""
    if request.mimetype in ("application/yaml", "application/x-yaml", "text/yaml"):
        try:
            return request.get_data().decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"Send {what} as UTF-8 text.", field="body") from None
    body = json_body()
    # The same safe loader then reads it, with the same checks and messages as a file.
    return yaml.safe_dump(body, allow_unicode=True, sort_keys=False)


@bp.get("/openapi.json")
@public
def openapi() -> Any:
    """The API's OpenAPI 3 description."""
    return jsonify(SPEC)


@bp.get("/me")
@requires(Role.VIEWER)
def me() -> Any:
    """Who the token belongs to."""
    return jsonify({"email": g.user.email, "role": g.user.role})


# The areas, each in a module of its own on this blueprint.
from web.api import (  # noqa: E402, F401
    campaigns,
    contacts,
    contacts_import,
    conversations,
    flows,
    segments,
    templates,
    users,
)
