"""The templates pages: the list, one template with its versions and a preview, approval.

Everyone signed in reads templates; editors and admins submit them for WhatsApp's
approval and refresh the verdict (``campaigns.approval``: the sandbox approves at once,
with Twilio the Content API is asked). The forms that write templates are in
``web.console.template_form``.

The preview fills a version's placeholders with sample values (the version's own, or
those typed into the preview form) and shows the message as the voter sees it; an SMS
also shows its segments and encoding (``campaigns.sms_segments``). It is rendered by the
server, so it works without JavaScript; ``static/templates.js`` redraws it as one types.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bot.mediastore import MediaStore
from campaigns import approval, placeholders, sms_segments, templates
from campaigns.content_api import TemplateError
from campaigns.models import Campaign, Template, TemplateStatus, TemplateVersion
from web.auth.access import requires
from web.console import bp
from web.context import db_session, runtime
from web.errors import BadInput, NotFound
from web.models import Role

PAGE = 50
STATUSES = [s.value for s in TemplateStatus]
CAMPAIGNS_SHOWN = 50


def newest_versions() -> Any:
    """``SELECT template_versions`` limited to each template's newest version per language."""
    newest = (
        select(
            TemplateVersion.template_id,
            TemplateVersion.language,
            func.max(TemplateVersion.version).label("version"),
        )
        .group_by(TemplateVersion.template_id, TemplateVersion.language)
        .subquery()
    )
    return select(TemplateVersion).join(
        newest,
        and_(
            TemplateVersion.template_id == newest.c.template_id,
            TemplateVersion.language == newest.c.language,
            TemplateVersion.version == newest.c.version,
        ),
    )


@dataclasses.dataclass
class Listed:
    """A template on the list: its languages' newest versions and how many campaigns use it."""

    template: Template
    versions: list[TemplateVersion]
    campaigns: int


@bp.get("/templates")
@requires(Role.VIEWER)
def templates_list() -> Any:
    """Templates filtered by category, status, channel and language, a page at a time."""
    s = db_session()
    wanted = {key: request.args.get(key, "").strip() for key in ("category", "status", "channel", "language")}
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    _check_filters(wanted)
    stmt = select(Template)
    if wanted["category"]:
        stmt = stmt.where(Template.category == wanted["category"])
    if wanted["channel"]:
        stmt = stmt.where(Template.channel == wanted["channel"])
    if wanted["status"] or wanted["language"]:
        # Status and language apply to the same version: "approved in hi" is hi's newest version.
        matching = newest_versions().with_only_columns(TemplateVersion.template_id)
        if wanted["status"]:
            matching = matching.where(TemplateVersion.status == wanted["status"])
        if wanted["language"]:
            matching = matching.where(TemplateVersion.language == wanted["language"])
        stmt = stmt.where(Template.id.in_(matching))
    total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = s.scalars(stmt.order_by(Template.name).limit(PAGE).offset((page - 1) * PAGE)).all()
    ids = [t.id for t in rows]
    versions: dict[int, list[TemplateVersion]] = {}
    for version in s.scalars(
        newest_versions().where(TemplateVersion.template_id.in_(ids)).order_by(TemplateVersion.language)
    ):
        versions.setdefault(version.template_id, []).append(version)
    used = dict(
        s.execute(
            select(Campaign.template_id, func.count())
            .where(Campaign.template_id.in_(ids))
            .group_by(Campaign.template_id)
        ).all()
    )
    languages = s.scalars(select(TemplateVersion.language).distinct().order_by(TemplateVersion.language)).all()
    return render_template(
        "console/templates.html",
        listed=[Listed(t, versions.get(t.id, []), used.get(t.id, 0)) for t in rows],
        total=total,
        page=page,
        pages=max((total + PAGE - 1) // PAGE, 1),
        wanted=wanted,
        query={key: value for key, value in wanted.items() if value},
        categories=templates.CATEGORIES,
        statuses=STATUSES,
        channels=templates.CHANNELS,
        languages=languages,
    )


def _check_filters(wanted: dict[str, str]) -> None:
    known = {"category": templates.CATEGORIES, "status": STATUSES, "channel": templates.CHANNELS}
    for key, values in known.items():
        if wanted[key] and wanted[key] not in values:
            raise BadInput(f"{key} must be one of {', '.join(values)}; got {wanted[key]!r}", field=key)
    if wanted["language"] and (wrong := templates.language_problem(wanted["language"])):
        raise BadInput(f"language: {wrong}", field="language")


@dataclasses.dataclass(frozen=True)
class Preview:
    """A version filled with sample values, as the voter would see it."""

    values: dict[str, str]  # placeholder number -> the value in the preview form
    pieces: list[tuple[str, str | None]]  # (text, None | "value" | "missing")
    problem: str | None
    sms: sms_segments.SegmentCount | None  # SMS only: the filled text's segments


def preview(template: Template, version: TemplateVersion, given: dict[str, str]) -> Preview:
    """Fill ``version`` from ``given`` (``value_N`` of the preview form), else from its samples."""
    samples = version.samples or {}
    numbers = placeholders.placeholders(version.body)
    values = {str(n): given.get(f"value_{n}", str(samples.get(str(n), ""))).strip() for n in numbers}
    pieces: list[tuple[str, str | None]] = []
    for text, number in placeholders.pieces(version.body):
        if number is None:
            pieces.append((text, None))
        else:
            value = values[str(number)]
            pieces.append((value, "value") if value else (text, "missing"))
    problem = None
    try:
        templates.render(version, values)
    except placeholders.MissingValueError as exc:
        problem = f"{{{{{exc.number}}}}} has no value: a voter would never get this message."
    except placeholders.PlaceholderError as exc:
        problem = f"The body has a mistake: {exc}"
    counted = sms_segments.count(templates.sample_text(version.body, values)) if template.channel == "sms" else None
    return Preview(values, pieces, problem, counted)


def header_src(version: TemplateVersion) -> str | None:
    """Where this page can show a header image from: only files canvass serves itself.

    The console's Content-Security-Policy allows images from its own address, so a header
    at any other address is offered as a link instead.
    """
    if version.media_kind != "image" or not version.media_url:
        return None
    path = urlsplit(version.media_url).path
    name = path.removeprefix("/media/")
    if path.startswith("/media/") and MediaStore(runtime().settings.var_dir).path(name) is not None:
        return url_for("media.serve", name=name)
    return None


def find_template(s: Session, name: str) -> Template:
    """The template called ``name``, or a 404 page."""
    template = s.scalar(select(Template).where(Template.name == name))
    if template is None:
        raise NotFound(f"There is no template named {name!r}.")
    return template


@bp.get("/templates/<name>")
@requires(Role.VIEWER)
def template_page(name: str) -> Any:
    """One template: its languages and versions, a version's body, header, buttons and status, a preview."""
    s = db_session()
    template = find_template(s, name)
    rows = s.scalars(
        select(TemplateVersion)
        .where(TemplateVersion.template_id == template.id)
        .order_by(TemplateVersion.language, TemplateVersion.version.desc())
    ).all()
    by_language: dict[str, list[TemplateVersion]] = {}
    for row in rows:
        by_language.setdefault(row.language, []).append(row)
    language = request.args.get("language") or next(iter(by_language), "")
    if by_language and language not in by_language:
        raise NotFound(f"{name} has no {language} version; it has {', '.join(by_language)}.")
    chosen = by_language.get(language, [])
    wanted = request.args.get("version", type=int)
    version = next((v for v in chosen if v.version == wanted), None) if wanted else (chosen[0] if chosen else None)
    if wanted and version is None:
        raise NotFound(f"{name} has no {language} version {wanted}; it has 1 to {chosen[0].version}.")
    used_by = s.scalars(
        select(Campaign).where(Campaign.template_id == template.id).order_by(Campaign.id.desc()).limit(CAMPAIGNS_SHOWN)
    ).all()
    used_total = s.scalar(select(func.count()).select_from(Campaign).where(Campaign.template_id == template.id)) or 0
    newest = [versions[0] for versions in by_language.values()]
    return render_template(
        "console/template.html",
        template=template,
        by_language=by_language,
        language=language,
        version=version,
        pieces=placeholders.pieces(version.body) if version else [],
        notes=templates.notes(template.channel, version.body, version.samples) if version else [],
        preview=preview(template, version, request.args.to_dict()) if version else None,
        header_src=header_src(version) if version else None,
        used_by=used_by,
        used_total=used_total,
        drafts=[v.language for v in newest if v.status == TemplateStatus.DRAFT],
        can_edit=g.user.role_enum.allows(Role.EDITOR),
    )


def _verdicts(done: list[tuple[str, int, str]]) -> str:
    return "; ".join(f"{lang} v{number}: {status}" for lang, number, status in done) or "no versions"


@bp.post("/templates/<name>/submit")
@requires(Role.EDITOR)
def template_submit(name: str) -> Any:
    """Submit the newest draft of each language (or of the form's ``language``) for WhatsApp's approval."""
    s = db_session()
    find_template(s, name)
    language = request.form.get("language") or None
    try:
        done = approval.submit(s, runtime().settings, name, language=language)
    except (approval.ApprovalError, TemplateError) as exc:
        # Languages submitted before the refusal keep their new state (and Twilio content
        # already created keeps its SID, so that trying again does not create it twice).
        s.commit()
        flash(f"Not submitted: {exc}", "error")
    else:
        s.commit()
        sandbox = " (the sandbox provider approves at once)" if runtime().settings.provider == "sandbox" else ""
        flash(f"Submitted {name}{sandbox}: {_verdicts(done)}.", "info")
    return redirect(url_for("console.template_page", name=name, language=language))


@bp.post("/templates/<name>/refresh")
@requires(Role.EDITOR)
def template_refresh(name: str) -> Any:
    """Ask Twilio for WhatsApp's verdict on the submitted versions."""
    s = db_session()
    find_template(s, name)
    try:
        done = approval.refresh(s, runtime().settings, name)
    except (approval.ApprovalError, TemplateError) as exc:
        s.commit()
        flash(f"Could not refresh: {exc}", "error")
    else:
        s.commit()
        flash(f"Status of {name}: {_verdicts(done)}.", "info")
    return redirect(url_for("console.template_page", name=name, language=request.form.get("language") or None))
