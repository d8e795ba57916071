"""Templates: loading them from YAML, their language versions, approval and rendering.

A template file (``canvass templates load FILE``)::

    template: booth_reminder
    channel: whatsapp                 # whatsapp (approved by WhatsApp) or sms (a snippet)
    category: reminder                # onboarding, reminder, grievance_update, fundraising, ...
    languages:
      en:
        body: "Namaste {{1}}! Polling in ward {{2}} is on Sunday. Do you know your booth?"
        samples: {1: Asha, 2: "12"}   # an example per placeholder, for WhatsApp's review
        buttons: ["Yes", "No"]        # quick replies (at most 3)
        media: {file: poster.png}     # a header file (or {url: https://..., kind: image})
      hi:
        body: "नमस्ते {{1}}! ..."

A language version that a campaign has used (or that was submitted for approval) is
never changed again: loading a changed text makes a new version, which needs approval
again. SMS snippets need no approval.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.engine.errors import FlowInvalid, Loc, Problem
from bot.engine.yamlsafe import load
from campaigns import media as media_rules
from campaigns import placeholders, sms_segments
from campaigns.models import Campaign, Template, TemplateStatus, TemplateVersion

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z]{2,4})?$")
CHANNELS = ("whatsapp", "sms")
CATEGORIES = ("onboarding", "reminder", "grievance_update", "announcement", "survey", "fundraising", "utility")
MEDIA_KINDS = ("image", "video", "document")
MAX_BODY = {"whatsapp": 1024, "sms": 1600}
MAX_BUTTONS = 3
MAX_BUTTON = 20
TOP_KEYS = {"template", "channel", "category", "description", "languages"}
LANGUAGE_KEYS = {"body", "samples", "buttons", "media"}


@dataclasses.dataclass(frozen=True)
class Loaded:
    """What loading a template file did."""

    name: str
    created: bool
    versions: list[tuple[str, int, str]]  # (language, version, "new" / "changed" / "unchanged")


def parse_file(text: str, path: str, *, base_dir: Path | None = None) -> dict[str, Any]:
    """Read and check a template file; raise ``FlowInvalid`` with ``path:line:col`` problems.

    ``base_dir`` is where header files are looked for (the file's folder, from the CLI).
    """
    data, problems = load(text, path)
    if problems:
        raise FlowInvalid(problems)

    def fail(where: Any, message: str) -> None:
        problems.append(Problem(path, getattr(where, "loc", None) or Loc(1, 1), message))

    if not isinstance(data, dict):
        raise FlowInvalid([Problem(path, Loc(1, 1), "a template file is a mapping with template, channel, languages")])
    loc = data.value_loc
    for key in data:
        if key not in TOP_KEYS:
            problems.append(
                Problem(path, data.key_loc(key), f"unknown key {key!r} (expected {', '.join(sorted(TOP_KEYS))})")
            )
    name, channel, category = data.get("template"), data.get("channel", "whatsapp"), data.get("category", "utility")
    for key, message in header_problems(name, channel, category):
        problems.append(Problem(path, loc(key), f"{key}: {message}"))
    languages = data.get("languages")
    out: dict[str, Any] = {
        "name": name,
        "channel": channel,
        "category": category,
        "description": data.get("description"),
        "languages": {},
    }
    if channel not in CHANNELS:
        raise FlowInvalid(problems)  # each language's rules depend on the channel
    if not isinstance(languages, dict) or not languages:
        problems.append(Problem(path, loc("languages"), "languages: give at least one language, e.g. en: {body: ...}"))
        raise FlowInvalid(problems)
    for lang, spec in languages.items():
        here = languages.key_loc(lang)
        if (wrong := language_problem(lang)) is not None:
            problems.append(Problem(path, here, f"languages: {wrong}"))
            continue
        if not isinstance(spec, dict):
            problems.append(
                Problem(path, here, f"languages.{lang}: must be a mapping with body (and samples, buttons, media)")
            )
            continue
        try:
            out["languages"][lang] = check_version(spec, str(channel), base_dir)
        except VersionError as exc:
            where = spec.value_loc(exc.key) if exc.key in spec else spec.loc
            problems.append(Problem(path, where, f"languages.{lang}.{exc.key}: {exc}"))
    if problems:
        raise FlowInvalid(problems)
    return out


def header_problems(name: Any, channel: Any, category: Any) -> list[tuple[str, str]]:
    """Check a template's name, channel and category; return (key, message) per problem.

    The keys are those of the file format: ``template``, ``channel``, ``category``.
    """
    problems = []
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(("template", "a name of lowercase letters, digits and _ (e.g. booth_reminder)"))
    if channel not in CHANNELS:
        problems.append(("channel", f"must be whatsapp or sms, got {channel!r}"))
    if category not in CATEGORIES:
        problems.append(("category", f"one of {', '.join(CATEGORIES)}; got {category!r}"))
    return problems


def language_problem(language: Any) -> str | None:
    """Why ``language`` is not a language code, or None when it is one."""
    if isinstance(language, str) and LANGUAGE.match(language):
        return None
    return f"{language!r} is not a language code such as en, hi or mr-IN"


class VersionError(ValueError):
    """A language version's ``key`` is wrong."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def check_version(spec: Mapping[str, Any], channel: str, base_dir: Path | None = None) -> dict[str, Any]:
    """Check one language version's body, samples, buttons and media; return it normalised.

    ``base_dir``: where a header ``file`` is looked for (the template file's folder); a
    file is accepted only then (from the command line, never from a web request).
    """
    for key in spec:
        if key not in LANGUAGE_KEYS:
            raise VersionError(str(key), f"unknown key (expected {', '.join(sorted(LANGUAGE_KEYS))})")
    body = spec.get("body")
    if not isinstance(body, str) or not body.strip():
        raise VersionError("body", "the message text is required")
    if len(body) > MAX_BODY[channel]:
        raise VersionError("body", f"{len(body)} characters; {channel} allows at most {MAX_BODY[channel]}")
    try:
        placeholders.check(body)
    except placeholders.PlaceholderError as exc:
        raise VersionError("body", str(exc)) from None
    numbers = [str(n) for n in placeholders.placeholders(body)]
    samples = {str(k): str(v) for k, v in (spec.get("samples") or {}).items()}
    if channel == "whatsapp":
        missing = [n for n in numbers if not samples.get(n)]
        if missing:
            raise VersionError("samples", f"WhatsApp's review needs an example for {{{{{missing[0]}}}}}")
    buttons = spec.get("buttons") or []
    if not isinstance(buttons, list) or not all(isinstance(b, str) and b.strip() for b in buttons):
        raise VersionError("buttons", "a list of button titles")
    if channel == "sms" and buttons:
        raise VersionError("buttons", "SMS has no buttons")
    if len(buttons) > MAX_BUTTONS or any(len(b) > MAX_BUTTON for b in buttons):
        raise VersionError("buttons", f"at most {MAX_BUTTONS} buttons of at most {MAX_BUTTON} characters")
    if len({b.strip() for b in buttons}) != len(buttons):
        # A button's id is its title (campaigns.content_api): two alike could not be told apart.
        raise VersionError("buttons", "two buttons have the same title")
    media = spec.get("media")
    found: dict[str, Any] = {"media_url": None, "media_kind": None}
    if media is not None:
        if channel == "sms" or not isinstance(media, Mapping):
            raise VersionError("media", "a WhatsApp header: {file: poster.png} or {url: https://..., kind: image}")
        found = _media_file(media, base_dir) if "file" in media else _media_url(media)
    return {"body": body, "samples": samples, "buttons": [b.strip() for b in buttons], **found}


def _media_url(media: Mapping[str, Any]) -> dict[str, Any]:
    url, kind = media.get("url"), media.get("kind", "image")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise VersionError("media", "url must be an https:// address WhatsApp can fetch")
    if kind not in MEDIA_KINDS:
        raise VersionError("media", f"kind must be one of {', '.join(MEDIA_KINDS)}")
    return {"media_url": url, "media_kind": kind}


def _media_file(media: Mapping[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """A header file: recognised by its bytes, its size checked, to be published at store time."""
    if base_dir is None:
        raise VersionError("media", "a file can only be loaded from the command line; give its https:// url")
    path = (base_dir / str(media["file"])).resolve()
    if not path.is_file():
        raise VersionError("media", f"no such file: {path}")
    with path.open("rb") as fh:
        head = fh.read(media_rules.HEAD_BYTES)
    try:
        found = media_rules.check_media_bytes(head, path.stat().st_size, filename=path.name)
    except media_rules.MediaError as exc:
        raise VersionError("media", exc.message) from None
    return {"media_url": None, "media_kind": found.kind, "media_file": str(path), "media_type": found.content_type}


def store(
    db: Session,
    parsed: Mapping[str, Any],
    *,
    user: str | None = None,
    publish: Callable[[Path, str], str] | None = None,
) -> Loaded:
    """Create or update a template from :func:`parse_file`'s result.

    ``publish(path, content_type)`` serves a header file and returns its URL (the media store).
    """
    template = db.scalar(select(Template).where(Template.name == parsed["name"]))
    created = template is None
    if template is None:
        template = Template(
            name=parsed["name"], channel=parsed["channel"], category=parsed["category"], created_by=user
        )
        db.add(template)
    elif template.channel != parsed["channel"]:
        raise ValueError(
            f"template {template.name!r} is a {template.channel} template; it cannot become {parsed['channel']}"
        )
    template.category = parsed["category"]
    template.description = parsed.get("description")
    db.flush()
    done = []
    for lang, spec in parsed["languages"].items():
        spec = dict(spec)
        if spec.get("media_file"):
            if publish is None:
                raise ValueError("a template with a header file needs somewhere to publish it")
            spec["media_url"] = publish(Path(spec.pop("media_file")), spec.pop("media_type"))
        done.append(_store_version(db, template, lang, spec, user))
    return Loaded(template.name, created, done)


def _store_version(
    db: Session, template: Template, lang: str, spec: dict[str, Any], user: str | None
) -> tuple[str, int, str]:
    latest = latest_version(db, template.id, lang)
    fields = ("body", "samples", "buttons", "media_url", "media_kind")
    if latest is not None and all(getattr(latest, f) == spec[f] for f in fields):
        return (lang, latest.version, "unchanged")
    sms = template.channel == "sms"
    if latest is not None and latest.used_at is None and latest.status == TemplateStatus.DRAFT:
        for f in fields:
            setattr(latest, f, spec[f])
        return (lang, latest.version, "changed")
    version = TemplateVersion(
        template_id=template.id,
        language=lang,
        version=(latest.version + 1) if latest else 1,
        created_by=user,
        # SMS snippets need nobody's approval.
        status=TemplateStatus.APPROVED if sms else TemplateStatus.DRAFT,
        status_reason="SMS needs no approval" if sms else None,
        status_at=utcnow() if sms else None,
        **spec,
    )
    db.add(version)
    db.flush()
    return (lang, version.version, "new")


def notes(channel: str, body: str, samples: Mapping[str, str] | None = None) -> list[str]:
    """What an author should know about a body: WhatsApp's review rules, SMS segments."""
    if channel == "whatsapp":
        return [str(w) for w in placeholders.warnings(body)]
    sample = sample_text(body, samples or {})
    parts = sms_segments.count(sample)
    note = f"{parts.segments} SMS segment(s), {parts.encoding}, {parts.units} characters"
    if parts.encoding == "UCS-2":
        note += " (Devanagari, emoji or other characters outside GSM-7: 70 per segment, 67 when split)"
    return [note]


def sample_text(body: str, samples: Mapping[str, str]) -> str:
    """The body with each placeholder filled by its sample: the text an SMS is counted by.

    A placeholder without a sample counts as 10 characters, a typical name; a malformed
    one stays as typed. The console's live counter (``web/static/sms_segments.js``) fills
    the text the same way, so that both count the same.
    """
    return "".join(
        text if number is None else str(samples.get(str(number)) or "x" * 10)
        for text, number in placeholders.pieces(body)
    )


def segments(version: TemplateVersion) -> int:
    """SMS segments of a version's text with its sample values (what an SMS is priced by)."""
    return sms_segments.count(sample_text(version.body, version.samples or {})).segments


def price_units(db: Session, channel: str, version_id: int | None) -> int:
    """Price units of one message: the SMS segments of its template version's text, else 1."""
    if channel != "sms" or not version_id:
        return 1
    version = db.get(TemplateVersion, version_id)
    return segments(version) if version is not None else 1


def latest_version(db: Session, template_id: int, language: str, *, approved: bool = False) -> TemplateVersion | None:
    """The newest version of a template in a language (the newest approved one with ``approved``)."""
    stmt = select(TemplateVersion).where(
        TemplateVersion.template_id == template_id, TemplateVersion.language == language
    )
    if approved:
        stmt = stmt.where(TemplateVersion.status == TemplateStatus.APPROVED)
    return db.scalar(stmt.order_by(TemplateVersion.version.desc()).limit(1))


def attempt_version(db: Session, campaign: Campaign, *, fallback: bool = False) -> tuple[str, TemplateVersion | None]:
    """A campaign attempt's channel, and the newest approved version of its template (None without one).

    The campaign's own attempt, or with ``fallback`` its fallback's.
    """
    channel, template_id, language = campaign.channel, campaign.template_id, campaign.template_language
    if fallback:
        step = campaign.fallback or {}
        channel, template_id, language = step["channel"], step.get("template_id"), step.get("language")
    if not (template_id and language):
        return channel, None
    return channel, latest_version(db, template_id, language, approved=True)


def approve_in_sandbox(version: TemplateVersion) -> None:
    """The sandbox provider approves at once (there is no WhatsApp to ask)."""
    version.status = TemplateStatus.APPROVED
    version.status_reason = "approved by the sandbox provider"
    version.status_at = utcnow()


def render(version: TemplateVersion, values: Mapping[str, str]) -> str:
    """The text a voter receives."""
    return placeholders.render(version.body, values)
