"""REST API: contacts (list, add, read, change, delete or erase) and a voter's timeline."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot import timeline
from bot.contact_edits import ContactEditError, delete_contact, edit_contact
from bot.contacts import add_numbers, parse_tag
from bot.models import Contact
from bot.phones import PhoneParser
from bot.retention import erase_contact
from web.api import bp, json_body, one_or_404
from web.api.paging import cursor_arg, keyset, limit_arg
from web.auth.access import requires
from web.context import db_session, runtime
from web.errors import BadInput, Conflict
from web.models import Role


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
        "fields": c.fields or {},
        "created_at": c.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def contact_or_404(contact_id: int) -> Contact:
    """The contact, or a 404 naming it."""
    return one_or_404(Contact, contact_id, what="contact", field="contact_id")


@bp.get("/contacts")
@requires(Role.VIEWER)
def list_contacts() -> Any:
    """Contacts, newest first; ``phone`` looks one up (any format)."""
    stmt = select(Contact).options(selectinload(Contact.tags))
    if phone := request.args.get("phone"):
        try:
            e164 = PhoneParser(runtime().settings.default_region).parse(phone).e164
        except ValueError as exc:
            raise BadInput(str(exc), field="phone") from None
        stmt = stmt.where(Contact.phone == e164)
    shown, cursor = keyset(stmt, Contact.id, descending=True)
    return jsonify({"contacts": [contact_json(c) for c in shown], "next_cursor": cursor})


@bp.post("/contacts")
@requires(Role.OPERATOR)
def add_contacts() -> Any:
    """Add up to 50 numbers, with tags: ``{"numbers": [...], "tags": ["ward=12"]}``."""
    body = json_body()
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


@bp.get("/contacts/<int:contact_id>")
@requires(Role.VIEWER)
def get_contact(contact_id: int) -> Any:
    """One contact."""
    return jsonify(contact_json(contact_or_404(contact_id)))


@bp.patch("/contacts/<int:contact_id>")
@requires(Role.OPERATOR)
def patch_contact(contact_id: int) -> Any:
    """Change name, language, timezone, tags, valued tags or fields (JSON merge-patch rules)."""
    contact = contact_or_404(contact_id)
    body = json_body()
    s = db_session()
    try:
        edit_contact(s, contact, body)
    except ContactEditError as exc:
        s.rollback()
        raise BadInput(str(exc), field=exc.field) from None
    s.commit()
    return jsonify(contact_json(contact))


@bp.delete("/contacts/<int:contact_id>")
@requires(Role.OPERATOR)
def remove_contact(contact_id: int) -> Any:
    """Delete a contact nothing ever happened with; one with history is erased instead (409)."""
    contact_or_404(contact_id)
    s = db_session()
    try:
        delete_contact(s, contact_id)
    except ContactEditError as exc:
        s.rollback()
        raise Conflict(str(exc), field=exc.field, code="has_history") from None
    s.commit()
    return Response(status=204)


@bp.post("/contacts/<int:contact_id>/erase")
@requires(Role.OPERATOR)
def erase(contact_id: int) -> Any:
    """Erase what the voter said and who they are; what happened stays (see bot.retention)."""
    contact_or_404(contact_id)
    s = db_session()
    erased = erase_contact(s, contact_id, source="api")
    s.commit()
    return jsonify({"contact": contact_json(contact_or_404(contact_id)), "messages_erased": erased.messages})


@bp.get("/contacts/<int:contact_id>/timeline")
@requires(Role.VIEWER)
def contact_timeline(contact_id: int) -> Any:
    """Messages in and out with statuses, funnel steps, consent changes and handoff cases, newest first."""
    contact_or_404(contact_id)
    limit = limit_arg()
    before = None
    if (raw := cursor_arg()) is not None:
        try:
            before = timeline.Cursor.parse(raw)
        except ValueError:
            raise BadInput(f"not a timeline position, got {raw!r}", field="cursor") from None
    found = timeline.page(db_session(), contact_id, before=before, limit=limit)
    return jsonify(
        {
            "contact_id": contact_id,
            "timeline": found.entries,
            "next_cursor": str(found.older) if found.older else None,
        }
    )
