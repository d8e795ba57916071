"""Template approval: WhatsApp reviews templates through Twilio's Content API.

With ``CANVASS_PROVIDER=sandbox`` there is no WhatsApp to ask, so submitting approves at
once. With ``twilio`` a draft version becomes Twilio content (``HX...``), is submitted
for WhatsApp's approval, and :func:`refresh` reads the verdict. SMS snippets need no
approval.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import utcnow
from bot.settings import Settings
from campaigns import templates
from campaigns.models import Template, TemplateStatus, TemplateVersion


class ApprovalError(ValueError):
    """Submitting or refreshing failed; the message says why."""


def _template(db: Session, name: str) -> Template:
    template = db.scalar(select(Template).where(Template.name == name))
    if template is None:
        raise ApprovalError(f"no template named {name!r} (canvass templates list)")
    if template.channel != "whatsapp":
        raise ApprovalError(f"{name} is an {template.channel} snippet: it needs no approval")
    return template


def _newest(db: Session, template: Template, language: str | None) -> list[TemplateVersion]:
    languages = sorted(
        set(db.scalars(select(TemplateVersion.language).where(TemplateVersion.template_id == template.id)))
    )
    if language is not None:
        if language not in languages:
            raise ApprovalError(f"{template.name} has no {language} version (it has {', '.join(languages)})")
        languages = [language]
    out = []
    for lang in languages:
        version = templates.latest_version(db, template.id, lang)
        if version is not None:
            out.append(version)
    return out


def submit(db: Session, settings: Settings, name: str, *, language: str | None = None) -> list[tuple[str, int, str]]:
    """Submit the newest draft version of each language; return (language, version, status)."""
    template = _template(db, name)
    done = []
    for version in _newest(db, template, language):
        if version.status != TemplateStatus.DRAFT:
            done.append((version.language, version.version, f"{version.status} (nothing to submit)"))
            continue
        if settings.provider == "sandbox":
            templates.approve_in_sandbox(version)
        else:
            _submit_to_twilio(settings, template, version)
        done.append((version.language, version.version, version.status))
    return done


def refresh(db: Session, settings: Settings, name: str) -> list[tuple[str, int, str]]:
    """Read WhatsApp's verdict on each language's submitted version."""
    template = _template(db, name)
    done = []
    for version in _newest(db, template, None):
        if version.status == TemplateStatus.SUBMITTED and version.content_sid and settings.provider != "sandbox":
            _refresh_from_twilio(settings, version)
        reason = f" ({version.status_reason})" if version.status_reason else ""
        done.append((version.language, version.version, f"{version.status}{reason}"))
    return done


def _client(settings: Settings):  # type: ignore[no-untyped-def]
    from bot.channels.twilio_base import TwilioAccount
    from campaigns.content_api import ContentApi

    return ContentApi(TwilioAccount.from_settings(settings))


def _submit_to_twilio(settings: Settings, template: Template, version: TemplateVersion) -> None:
    from campaigns.content_api import ContentApiError, ContentDraft

    api = _client(settings)
    try:
        if not version.content_sid:
            version.content_sid = api.create(
                ContentDraft(
                    friendly_name=f"{template.name}_{version.language}_v{version.version}",
                    language=version.language,
                    body=version.body,
                    samples=dict(version.samples or {}),
                    buttons=tuple(version.buttons or ()),
                    media_url=version.media_url,
                )
            )
        state = api.submit(version.content_sid, f"{template.name}_v{version.version}", template.category)
    except ContentApiError as exc:
        raise ApprovalError(f"{template.name} {version.language}: Twilio refused: {exc}") from None
    version.status, version.status_reason, version.status_at = state.status, state.reason, utcnow()


def _refresh_from_twilio(settings: Settings, version: TemplateVersion) -> None:
    from campaigns.content_api import ContentApiError

    assert version.content_sid is not None
    try:
        state = _client(settings).refresh(version.content_sid)
    except ContentApiError as exc:
        raise ApprovalError(f"Twilio refused: {exc}") from None
    version.status, version.status_reason, version.status_at = state.status, state.reason, utcnow()
