"""REST API v1: Bearer tokens, JSON in and out."""

from __future__ import annotations

from typing import Any

import yaml
from flask import Blueprint, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.contacts import add_numbers, parse_tag
from bot.models import Contact
from bot.phones import PhoneParser
from bot.segments import SegmentError, count
from web.api.openapi import SPEC
from web.auth.access import csrf, public, requires
from web.context import db_session, runtime
from web.errors import BadInput
from web.models import Role

bp = Blueprint("api", __name__)
csrf.exempt(bp)


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput("Send a JSON object with Content-Type: application/json.", field="body")
    return body


def yaml_text_body(what: str) -> str:
    """A document in the YAML file format: sent as YAML, or as JSON with the same keys."""
    if request.mimetype in ("application/yaml", "application/x-yaml", "text/yaml"):
        return request.get_data(as_text=True)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput(f"Send {what} as JSON (or YAML with Content-Type: application/yaml).", field="body")
    # The same safe loader then reads it, with the same checks and messages as a file.
    return yaml.safe_dump(body, allow_unicode=True, sort_keys=False)


def contact_json(c: Contact) -> dict[str, Any]:
    """A contact as the API shows it."""
    return {
        "id": c.id,
        "phone": c.phone,
        "phone_kind": c.phone_kind,
        "name": c.name,
        "language": c.language,
        "timezone": c.timezone,
        "tags": c.plain_tags,
        "valued_tags": c.valued_tags,
        "consent": c.consent,
        "fields": c.fields,
        "created_at": c.created_at.isoformat().replace("+00:00", "Z"),
    }


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


@bp.get("/contacts")
@requires(Role.VIEWER)
def list_contacts() -> Any:
    """Contacts, newest first; ``phone`` looks one up (any format)."""
    s = db_session()
    limit = min(max(request.args.get("limit", 50, type=int) or 50, 1), 500)
    stmt = select(Contact).options(selectinload(Contact.tags)).order_by(Contact.id.desc()).limit(limit)
    if phone := request.args.get("phone"):
        try:
            e164 = PhoneParser(runtime().settings.default_region).parse(phone).e164
        except ValueError as exc:
            raise BadInput(str(exc), field="phone") from None
        stmt = stmt.where(Contact.phone == e164)
    if before := request.args.get("before", type=int):
        stmt = stmt.where(Contact.id < before)
    return jsonify({"contacts": [contact_json(c) for c in s.scalars(stmt)]})


@bp.post("/contacts")
@requires(Role.OPERATOR)
def add_contacts() -> Any:
    """Add up to 50 numbers, with tags: ``{"numbers": [...], "tags": ["ward=12"]}``."""
    body = _json_body()
    numbers, tags = body.get("numbers"), body.get("tags", [])
    if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) for n in numbers):
        raise BadInput("must be a non-empty list of phone numbers as text", field="numbers")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadInput("must be a list of tags such as volunteer or ward=12", field="tags")
    try:
        parsed = [parse_tag(t) for t in tags]
    except ValueError as exc:
        raise BadInput(str(exc), field="tags") from None
    s = db_session()
    try:
        result = add_numbers(s, PhoneParser(runtime().settings.default_region), numbers, parsed)
    except ValueError as exc:
        raise BadInput(str(exc), field="numbers") from None
    s.commit()
    return jsonify(
        {
            "created": [contact_json(c) for c in result.created],
            "updated": [contact_json(c) for c in result.updated],
            "rejected": [{"number": n, "reason": r} for n, r in result.rejected],
        }
    ), 201 if result.created else 200


@bp.post("/segments/count")
@requires(Role.VIEWER)
def segment_count() -> Any:
    """Count the contacts a segment selects: ``{"segment": {...}}``."""
    body = _json_body()
    try:
        n = count(db_session(), body.get("segment"))
    except SegmentError as exc:
        raise BadInput(str(exc), field=f"segment.{exc.path}" if exc.path else "segment") from None
    return jsonify({"count": n})


# More routes on the same blueprint, one module per area.
from web.api import campaigns, conversations, templates  # noqa: E402, F401
