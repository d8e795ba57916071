"""The template forms: a new template, and a new version of one (editors and admins).

The form holds what a template file holds for one language (``campaigns.templates``): a
name, channel and category, then the language's body, sample values, quick-reply buttons
and media header. It is checked by the same rules as ``canvass templates load``
(``header_problems``, ``check_version``: placeholders, lengths, buttons, and a header
file by its bytes and size with ``campaigns.media``), and stored the same way
(``templates.store``): a version that a campaign used or that was submitted is never
changed, so a change makes the next version.

A refused form comes back as typed, with each problem next to its field (an uploaded
file cannot be kept by the browser: it is asked for again).
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

from bot.mediastore import EXTENSIONS as SERVED
from campaigns import media, placeholders, sms_segments, templates
from campaigns.models import Template, TemplateVersion
from web.auth.access import requires
from web.cli.templates import publisher
from web.console import bp
from web.console.templates_pages import find_template
from web.context import db_session, runtime
from web.models import Role

# The file format's keys -> the form's fields.
FIELDS = {"template": "name", "body": "body", "samples": "samples", "buttons": "buttons", "media": "media"}
SAMPLE = re.compile(r"^sample_([1-9][0-9]*)$")
MAX_DESCRIPTION = 500


@dataclasses.dataclass
class Form:
    """What the form shows: the values typed, and the problems per field."""

    name: str = ""
    channel: str = "whatsapp"
    category: str = "utility"
    description: str = ""
    language: str = "en"
    body: str = ""
    samples: dict[str, str] = dataclasses.field(default_factory=dict)
    buttons: list[str] = dataclasses.field(default_factory=lambda: [""] * templates.MAX_BUTTONS)
    media_url: str = ""
    media_kind: str = "image"
    kept_media: tuple[str, str] | None = None  # (url, kind) of the version this one starts from
    keep_media: bool = False
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def numbers(self) -> list[int]:
        """The placeholders of the body, to ask a sample value for each."""
        return placeholders.placeholders(self.body)

    @property
    def sample_fields(self) -> list[int]:
        """The sample inputs to show: the body's, and any other typed (a refused form loses nothing)."""
        return sorted(set(self.numbers) | {int(k) for k in self.samples})

    @property
    def counter(self) -> sms_segments.SegmentCount:
        """The SMS segments of the body with its samples (what the live counter shows)."""
        return sms_segments.count(templates.sample_text(self.body, self.samples))


def _from_version(template: Template, version: TemplateVersion | None, language: str) -> Form:
    form = Form(
        name=template.name,
        channel=template.channel,
        category=template.category,
        description=template.description or "",
        language=language,
    )
    if version is not None:
        form.body = version.body
        form.samples = {str(k): str(v) for k, v in (version.samples or {}).items()}
        form.buttons = (list(version.buttons or []) + [""] * templates.MAX_BUTTONS)[: templates.MAX_BUTTONS]
        if version.media_url and version.media_kind:
            form.kept_media = (version.media_url, version.media_kind)
            form.keep_media = True
    return form


def _read(values: Mapping[str, str], base: Form) -> Form:
    """The form as posted; name and channel stay the template's on a new version."""
    fixed = bool(base.name)
    samples = {m.group(1): values[key].strip() for key in values if (m := SAMPLE.match(key))}
    return Form(
        name=base.name if fixed else values.get("name", "").strip(),
        channel=base.channel if fixed else values.get("channel", "").strip(),
        category=values.get("category", "").strip(),
        description=values.get("description", "").strip(),
        language=values.get("language", "").strip(),
        # Browsers send a text box's line ends as CRLF; the live counter sees LF, as a phone does.
        body=values.get("body", "").replace("\r\n", "\n").replace("\r", "\n"),
        samples={k: v for k, v in samples.items() if v},
        buttons=[values.get(f"button_{i}", "").strip() for i in range(1, templates.MAX_BUTTONS + 1)],
        media_url=values.get("media_url", "").strip(),
        media_kind=values.get("media_kind", "image").strip(),
        kept_media=base.kept_media,
        keep_media=bool(values.get("keep_media")) and base.kept_media is not None,
    )


def _version_spec(form: Form, upload: FileStorage | None, folder: Path) -> dict[str, Any] | None:
    """Check the language version as ``check_version`` does; None (and ``form.errors``) when refused."""
    # Samples of placeholders the body no longer has are dropped: Twilio refuses them.
    samples = {str(n): form.samples[str(n)] for n in form.numbers if str(n) in form.samples}
    spec: dict[str, Any] = {"body": form.body, "samples": samples, "buttons": [b for b in form.buttons if b]}
    if upload is not None and upload.filename:
        # Saved under the folder check_version reads header files from, by a name that keeps the
        # extension (it tells Office formats apart), then recognised by its bytes.
        extension = PurePosixPath(upload.filename).suffix.lower()
        name = secure_filename(upload.filename) or f"header{extension}"
        upload.save(folder / name)
        spec["media"] = {"file": name}
    elif form.media_url:
        spec["media"] = {"url": form.media_url, "kind": form.media_kind}
    try:
        checked = templates.check_version(spec, form.channel, folder)
    except templates.VersionError as exc:
        form.errors[FIELDS.get(exc.key, exc.key)] = str(exc)
        return None
    if checked.get("media_type") and checked["media_type"] not in SERVED:
        message = f"canvass cannot serve {checked['media_type']} files yet; save it as PDF or a newer Office format"
        form.errors["media"] = message
        return None
    if "media" not in spec and form.keep_media and form.kept_media is not None:
        checked["media_url"], checked["media_kind"] = form.kept_media
    return checked


def _check(form: Form, upload: FileStorage | None, folder: Path, *, new: bool) -> dict[str, Any] | None:
    """The parsed template (as ``parse_file`` gives it) for ``templates.store``, or None when refused."""
    for key, message in templates.header_problems(form.name, form.channel, form.category):
        form.errors[FIELDS.get(key, key)] = message
    if (wrong := templates.language_problem(form.language)) is not None:
        form.errors["language"] = wrong
    if len(form.description) > MAX_DESCRIPTION:
        form.errors["description"] = f"{len(form.description)} characters; at most {MAX_DESCRIPTION}"
    taken = new and "name" not in form.errors
    if taken and db_session().scalar(select(Template.id).where(Template.name == form.name)) is not None:
        form.errors["name"] = f"{form.name!r} exists already: open it and add a new version, or pick another name"
    if "channel" in form.errors:
        return None  # each version's rules depend on the channel
    spec = _version_spec(form, upload, folder)
    if form.errors or spec is None:
        return None
    return {
        "name": form.name,
        "channel": form.channel,
        "category": form.category,
        "description": form.description or None,
        "languages": {form.language: spec},
    }


def _page(form: Form, template: Template | None, status: int = 200) -> tuple[str, int]:
    return (
        render_template(
            "console/template_form.html",
            form=form,
            template=template,
            channels=templates.CHANNELS,
            categories=templates.CATEGORIES,
            media_kinds=templates.MEDIA_KINDS,
            limits=media.LIMITS_MB,
            max_body=templates.MAX_BODY,
            max_button=templates.MAX_BUTTON,
        ),
        status,
    )


def _save(form: Form, template: Template | None) -> Any:
    """Check and store the posted form; the form again (422) when it is refused."""
    with tempfile.TemporaryDirectory(prefix="canvass-header-") as folder:
        parsed = _check(form, request.files.get("media_file"), Path(folder), new=template is None)
        if parsed is None:
            if request.files.get("media_file") and "media" in form.errors:
                form.errors["media"] += " (choose the file again)"
            return _page(form, template, 422)
        s = db_session()
        loaded = templates.store(s, parsed, user=g.user.email, publish=publisher(runtime()))
    s.commit()
    language, number, what = loaded.versions[0]
    flash(_stored_message(loaded.name, language, number, what, loaded.created), "info")
    if form.channel == "whatsapp":
        # Placeholders at the body's edges or side by side: stored, but WhatsApp would refuse them.
        for note in templates.notes(form.channel, form.body):
            flash(f"WhatsApp's review would refuse this: {note}", "error")
    return redirect(url_for("console.template_page", name=loaded.name, language=language, version=number))


def _stored_message(name: str, language: str, number: int, what: str, created: bool) -> str:
    if created:
        return f"Created {name} with its {language} version v{number}."
    if what == "unchanged":
        return f"Nothing changed: {name} {language} v{number} has the same text, so no version was added."
    if what == "changed":
        return f"Updated {name} {language} v{number} in place: it is a draft that no campaign has used."
    return f"Stored {name} {language} v{number}. Earlier versions stay as they were (used or submitted)."


@bp.route("/templates/new", methods=["GET", "POST"])
@requires(Role.EDITOR)
def template_new() -> Any:
    """Write a new template: its first language version."""
    if request.method == "GET":
        return _page(Form(), None)
    return _save(_read(request.form, Form()), None)


@bp.route("/templates/<name>/versions/new", methods=["GET", "POST"])
@requires(Role.EDITOR)
def template_version_new(name: str) -> Any:
    """A new version in a language (a new language too), starting from that language's newest."""
    s = db_session()
    template = find_template(s, name)
    language = request.args.get("language", "")
    if not language:
        language = s.scalar(select(TemplateVersion.language).where(TemplateVersion.template_id == template.id)) or "en"
    base = _from_version(template, templates.latest_version(s, template.id, language), language)
    if request.method == "GET":
        return _page(base, template)
    return _save(_read(request.form, base), template)
