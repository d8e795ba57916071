"""What an agent sends one voter from the console: free text, or an approved template.

WhatsApp takes free-form text only within 24 hours of the voter's last message; outside
that window the agent picks an approved WhatsApp template and fills its placeholders
(``{{1}}``, ``{{2}}``, ...). The inbox's case page and the voter page share this.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.direct import ApprovedTemplate, DirectSendError
from bot.handoffs import CaseError
from campaigns import placeholders
from campaigns.models import Template, TemplateStatus, TemplateVersion

LABELS = {"text": "Message", "note": "Note", "case": "Case", "channel": "Channel", "template": "Template"}
MAX_TEMPLATES = 200


@dataclasses.dataclass(frozen=True)
class TemplateChoice:
    """An approved WhatsApp template version an agent may send, with its placeholders."""

    version_id: int
    name: str
    language: str
    body: str
    numbers: list[int]
    samples: dict[str, Any]

    @property
    def label(self) -> str:
        """``booth_reminder (en)``."""
        return f"{self.name} ({self.language})"


def approved_templates(db: Session) -> list[TemplateChoice]:
    """The newest approved version of each WhatsApp template and language, by name."""
    rows = db.execute(
        select(TemplateVersion, Template.name)
        .join(Template, Template.id == TemplateVersion.template_id)
        .where(Template.channel == "whatsapp", TemplateVersion.status == TemplateStatus.APPROVED.value)
        .order_by(Template.name, TemplateVersion.language, TemplateVersion.version.desc())
        .limit(MAX_TEMPLATES)
    ).all()
    seen: set[tuple[int, str]] = set()
    found = []
    for version, name in rows:
        if (version.template_id, version.language) in seen:
            continue
        seen.add((version.template_id, version.language))
        found.append(
            TemplateChoice(
                version.id,
                name,
                version.language,
                version.body,
                placeholders.placeholders(version.body),
                dict(version.samples or {}),
            )
        )
    return found


def chosen_template(db: Session, raw: str | None) -> TemplateChoice | None:
    """The approved template a form names by version id, or None."""
    if not raw or not raw.isdigit():
        return None
    return next((t for t in approved_templates(db) if t.version_id == int(raw)), None)


def filled_template(db: Session, form: Mapping[str, str]) -> tuple[str, ApprovedTemplate]:
    """The rendered text and the template to send, from a form's ``template`` and ``value_N``.

    Raises:
        DirectSendError: No approved template chosen, or a placeholder left empty
            (the field is ``template`` or ``value_N``).
    """
    choice = chosen_template(db, form.get("template"))
    if choice is None:
        raise DirectSendError("template", "choose one of the approved WhatsApp templates")
    version = db.get(TemplateVersion, choice.version_id)
    assert version is not None
    values: dict[int | str, str] = {str(n): form.get(f"value_{n}", "").strip() for n in choice.numbers}
    try:
        text = placeholders.render(choice.body, values)
    except placeholders.MissingValueError as exc:
        raise DirectSendError(f"value_{exc.number}", "must not be empty") from None
    return text, ApprovedTemplate(version.content_sid, {str(k): v for k, v in values.items()})


def refusal(exc: CaseError | DirectSendError) -> str:
    """A refused send or note as the agent reads it: the field first, then why."""
    message = str(exc)
    if isinstance(exc, DirectSendError):
        message = message.removeprefix(f"{exc.field}: ")
    if exc.field.startswith("value_"):
        return f"Value of {{{{{exc.field[6:]}}}}}: {message}"
    return f"{LABELS.get(exc.field, exc.field)}: {message}"
