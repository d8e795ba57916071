"""REST API: message templates (list, load, submit for approval, refresh the verdict)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from sqlalchemy import select

from bot.engine.errors import FlowInvalid
from campaigns import approval, templates
from campaigns.models import Template, TemplateVersion
from web.api import bp, json_body, text_field, yaml_text_body
from web.api.campaigns import iso
from web.api.paging import cursor_arg, limit_arg, page
from web.auth.access import requires
from web.context import db_session, runtime
from web.errors import BadInput, NotFound
from web.models import Role


def template_json(t: Template, versions: list[TemplateVersion]) -> dict[str, Any]:
    """A template with its language versions (newest first)."""
    return {
        "id": t.id,
        "name": t.name,
        "channel": t.channel,
        "category": t.category,
        "description": t.description,
        "versions": [
            {
                "id": v.id,
                "language": v.language,
                "version": v.version,
                "body": v.body,
                "samples": v.samples,
                "buttons": v.buttons,
                "media": {"url": v.media_url, "kind": v.media_kind} if v.media_url else None,
                "status": v.status,
                "status_reason": v.status_reason,
                "content_sid": v.content_sid,
                "in_use": v.used_at is not None,
                "notes": templates.notes(t.channel, v.body, v.samples),
                "created_at": iso(v.created_at),
            }
            for v in versions
        ],
    }


def _versions(template_ids: list[int]) -> dict[int, list[TemplateVersion]]:
    out: dict[int, list[TemplateVersion]] = {}
    rows = db_session().scalars(
        select(TemplateVersion)
        .where(TemplateVersion.template_id.in_(template_ids))
        .order_by(TemplateVersion.language, TemplateVersion.version.desc())
    )
    for v in rows:
        out.setdefault(v.template_id, []).append(v)
    return out


def _template(name: str) -> Template:
    template = db_session().scalar(select(Template).where(Template.name == name))
    if template is None:
        raise NotFound(f"no template named {name!r}", field="name")
    return template


@bp.get("/templates")
@requires(Role.VIEWER)
def list_templates() -> Any:
    """Templates with their language versions; ``?category=reminder`` filters."""
    limit = limit_arg()
    stmt = select(Template).order_by(Template.name).limit(limit + 1)
    if category := request.args.get("category"):
        stmt = stmt.where(Template.category == category)
    if (after := cursor_arg()) is not None:
        stmt = stmt.where(Template.name > after)
    found, cursor = page(db_session().scalars(stmt).all(), limit, lambda t: t.name)
    versions = _versions([t.id for t in found])
    return jsonify({"templates": [template_json(t, versions.get(t.id, [])) for t in found], "next_cursor": cursor})


@bp.get("/templates/<name>")
@requires(Role.VIEWER)
def get_template(name: str) -> Any:
    """One template with its versions."""
    template = _template(name)
    return jsonify(template_json(template, _versions([template.id]).get(template.id, [])))


@bp.post("/templates")
@requires(Role.EDITOR)
def load_template() -> Any:
    """Create or update a template from the template file format (YAML, or the same keys in JSON)."""
    text = yaml_text_body("a template")
    try:
        parsed = templates.parse_file(text, "template")
    except FlowInvalid as exc:
        raise BadInput("; ".join(p.message for p in exc.problems), field="template") from None
    s = db_session()
    try:
        loaded = templates.store(s, parsed, user=g.user.email)
    except ValueError as exc:
        raise BadInput(str(exc), field="channel") from None
    s.commit()
    template = _template(loaded.name)
    body = template_json(template, _versions([template.id]).get(template.id, []))
    return jsonify(body), 201 if loaded.created else 200


def _verdicts(done: list[tuple[str, int, str]]) -> Any:
    return jsonify({"versions": [{"language": lang, "version": v, "status": st} for lang, v, st in done]})


@bp.post("/templates/<name>/submit")
@requires(Role.EDITOR)
def submit_template(name: str) -> Any:
    """Submit draft versions for WhatsApp's approval: ``{"language": "en"}`` (optional)."""
    body = json_body(optional=True)
    language = None if body.get("language") is None else text_field(body, "language")
    s = db_session()
    try:
        done = approval.submit(s, runtime().settings, name, language=language)
    except approval.ApprovalError as exc:
        raise BadInput(str(exc), field="template") from None
    s.commit()
    return _verdicts(done)


@bp.post("/templates/<name>/refresh")
@requires(Role.EDITOR)
def refresh_template(name: str) -> Any:
    """Read WhatsApp's verdict on submitted versions."""
    s = db_session()
    try:
        done = approval.refresh(s, runtime().settings, name)
    except approval.ApprovalError as exc:
        raise BadInput(str(exc), field="template") from None
    s.commit()
    return _verdicts(done)
