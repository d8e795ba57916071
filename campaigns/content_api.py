"""Create WhatsApp templates in Twilio's Content API and follow their approval.

The real twilio SDK does the HTTP (``client.content.v1``), pointed at
``TwilioAccount.content_api_base`` (``TWILIO_CONTENT_API_BASE``) with the account's
timeout, through ``bot.channels.twilio_base.make_client``.

A draft becomes one Content type:

================================ ==================================================
draft has                        Content type
================================ ==================================================
a body only                      ``twilio/text``
buttons                          ``twilio/quick-reply`` (one QUICK_REPLY action each)
a media header                   ``twilio/media`` (the body is the caption)
a media header and buttons       ``twilio/card`` (title = body, media, actions)
================================ ==================================================

A button's id is its title: the inbound webhook then carries the same text whether the
voter taps the button or types its words, and flows match it either way.

Canvass categories map onto WhatsApp's (``CATEGORIES``); WhatsApp's approval statuses map
onto canvass's template states (``STATES``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList
from twilio.rest.content.v1.content.approval_create import ApprovalCreateList

from bot.channels.base import SendError
from bot.channels.twilio_base import TwilioAccount, make_client, send_error
from campaigns.errors import FieldError
from campaigns.placeholders import PlaceholderError, check

# Canvass category -> WhatsApp category. Utility: about something the voter asked for or
# signed up to; anything that promotes or asks for money is marketing in Meta's rules.
CATEGORIES = {
    "reminder": "UTILITY",  # a booth, a meeting or a date the voter registered for
    "onboarding": "UTILITY",  # the welcome after the voter opted in
    "grievance_update": "UTILITY",  # progress on a complaint the voter filed
    "fundraising": "MARKETING",  # asks for donations
    "utility": "UTILITY",
    "marketing": "MARKETING",
    "authentication": "AUTHENTICATION",
}
# WhatsApp's approval status (through Twilio) -> canvass template state.
STATES = {
    "unsubmitted": "draft",
    "received": "submitted",
    "pending": "submitted",
    "in_appeal": "submitted",
    "approved": "approved",
    "rejected": "rejected",
    "paused": "paused",  # quality too low for now; WhatsApp may lift it by itself
    "disabled": "rejected",  # no longer usable: like a rejection, with WhatsApp's reason
    "pending_deletion": "rejected",
    "deleted": "rejected",
}
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
LANGUAGE = re.compile(r"[a-z]{2,3}([_-][A-Za-z]{2,4})?")
MAX_BODY = 1024  # WhatsApp's limit on a template body
MAX_BUTTONS = 3  # quick replies WhatsApp shows without a "see all options" menu
MAX_BUTTON_TITLE = 20


class TemplateError(FieldError):
    """A template or request is invalid before anything is sent; ``field`` names the part."""


class ContentApiError(SendError):
    """Twilio's Content API failed; ``retryable`` for 429, 5xx, timeouts and lost connections.

    A ``SendError`` (a request to Twilio that failed), so that whatever retries Twilio
    calls decides by the same fields: ``message``, ``status``, ``code`` and ``retryable``.
    """

    def __init__(
        self, message: str, status: int | None = None, code: str | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message, retryable=retryable, code=code, status=status)


@dataclasses.dataclass(frozen=True)
class ContentDraft:
    """A template in one language, as it is sent for creation; checked when built."""

    friendly_name: str
    language: str
    body: str
    samples: Mapping[str, str] = dataclasses.field(default_factory=dict)
    buttons: tuple[str, ...] = ()
    media_url: str | None = None

    def __post_init__(self) -> None:
        if not self.friendly_name.strip():
            raise TemplateError("friendly_name", "must not be empty")
        if not LANGUAGE.fullmatch(self.language):
            raise TemplateError("language", f"must be a language code such as hi or en_US, got {self.language!r}")
        if not self.body.strip() or len(self.body) > MAX_BODY:
            raise TemplateError("body", f"must have 1 to {MAX_BODY} characters, got {len(self.body.strip())}")
        try:
            numbers = check(self.body)
        except PlaceholderError as exc:
            raise TemplateError("body", str(exc)) from None
        # Twilio wants string keys and values ({"1": "Asha"}); callers may hold {1: "Asha"}.
        samples = {str(key): "" if value is None else str(value) for key, value in self.samples.items()}
        for number in numbers:
            if not samples.get(str(number), "").strip():
                raise TemplateError(f"samples.{number}", f"WhatsApp's review needs a sample value for {{{{{number}}}}}")
        extra = sorted(set(samples) - {str(n) for n in numbers})
        if extra:
            raise TemplateError(f"samples.{extra[0]}", "the body has no such placeholder")
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "buttons", tuple(self.buttons))
        self._check_buttons()
        if self.media_url is not None and not re.fullmatch(r"https?://[^\s/]+/\S*", self.media_url):
            raise TemplateError("media_url", f"must be an http(s) URL that Twilio can fetch, got {self.media_url!r}")

    def _check_buttons(self) -> None:
        if len(self.buttons) > MAX_BUTTONS:
            raise TemplateError("buttons", f"at most {MAX_BUTTONS} quick replies, got {len(self.buttons)}")
        for n, title in enumerate(self.buttons):
            if not isinstance(title, str) or not title.strip() or len(title) > MAX_BUTTON_TITLE:
                raise TemplateError(f"buttons[{n}]", f"must have 1 to {MAX_BUTTON_TITLE} characters, got {title!r}")
        if len(set(self.buttons)) != len(self.buttons):
            raise TemplateError("buttons", "two buttons have the same title")


@dataclasses.dataclass(frozen=True)
class ApprovalState:
    """Where WhatsApp's review of a template stands, in canvass's words and in WhatsApp's."""

    status: str  # draft, submitted, approved, rejected, paused
    whatsapp_status: str
    reason: str | None = None
    name: str | None = None
    category: str | None = None


def content_types(draft: ContentDraft) -> dict[str, Any]:
    """Return the ``types`` object of the Content API request for ``draft`` (module table)."""
    actions = [{"type": "QUICK_REPLY", "title": title, "id": title} for title in draft.buttons]
    media = [draft.media_url] if draft.media_url else []
    if media and actions:
        return {"twilio/card": {"title": draft.body, "media": media, "actions": actions}}
    if media:
        return {"twilio/media": {"body": draft.body, "media": media}}
    if actions:
        return {"twilio/quick-reply": {"body": draft.body, "actions": actions}}
    return {"twilio/text": {"body": draft.body}}


def whatsapp_category(category: str) -> str:
    """Return WhatsApp's category for a canvass category (``CATEGORIES``)."""
    found = CATEGORIES.get(category.strip().lower())
    if found is None:
        known = ", ".join(CATEGORIES)
        raise TemplateError("category", f"unknown category {category!r}; use one of {known}")
    return found


def approval_state(whatsapp: Mapping[str, Any] | None) -> ApprovalState:
    """Read the ``whatsapp`` object of an approval answer (``None`` or empty: never submitted)."""
    whatsapp = whatsapp or {}
    raw = str(whatsapp.get("status") or "unsubmitted").lower()
    if raw not in STATES:
        raise ContentApiError(f"WhatsApp reported an unknown approval status {raw!r}", code="unknown_status")
    reason = str(whatsapp.get("rejection_reason") or "").strip() or None
    if raw == "disabled" and reason is None:
        reason = "disabled by WhatsApp"
    return ApprovalState(STATES[raw], raw, reason, whatsapp.get("name") or None, whatsapp.get("category") or None)


class ContentApi:
    """Twilio's Content API as canvass uses it: create, submit for approval, refresh, delete."""

    def __init__(self, account: TwilioAccount, client: Client | None = None) -> None:
        self.account = account
        self.client = client or make_client(account)

    def close(self) -> None:
        """Release the pooled HTTP connections of the client."""
        session = getattr(self.client.http_client, "session", None)
        if isinstance(session, requests.Session):
            session.close()

    def create(self, draft: ContentDraft) -> str:
        """Create the Content resource for ``draft``; return its SID (``HX...``)."""
        request = ContentList.ContentCreateRequest(
            {
                "friendly_name": draft.friendly_name,
                "language": draft.language,
                "variables": dict(draft.samples),
                "types": content_types(draft),
            }
        )
        created = self._call(lambda: self.client.content.v1.contents.create(request), retry_garbled=False)
        if not (created.sid and CONTENT_SID.fullmatch(created.sid)):
            raise ContentApiError(f"Twilio's answer has no content SID: {created.sid!r}", code="bad_response")
        return str(created.sid)

    def submit(self, content_sid: str, name: str, category: str) -> ApprovalState:
        """Ask WhatsApp to approve the content under template ``name`` in ``category``."""
        _check_sid(content_sid)
        if not TEMPLATE_NAME.fullmatch(name):
            raise TemplateError("name", f"must be lowercase letters, digits and underscores, got {name!r}")
        request = ApprovalCreateList.ContentApprovalRequest({"name": name, "category": whatsapp_category(category)})
        contents = self.client.content.v1.contents(content_sid)
        created = self._call(lambda: contents.approval_create.create(request), retry_garbled=False)
        answer = {"status": created.status, "rejection_reason": created.rejection_reason, "name": created.name}
        return approval_state({**answer, "category": created.category})

    def refresh(self, content_sid: str) -> ApprovalState:
        """Fetch WhatsApp's approval status of the content."""
        _check_sid(content_sid)
        contents = self.client.content.v1.contents(content_sid)
        fetched = self._call(lambda: contents.approval_fetch().fetch(), retry_garbled=True)
        return approval_state(fetched.whatsapp)

    def delete(self, content_sid: str) -> None:
        """Delete the content (a template no campaign will use again)."""
        _check_sid(content_sid)
        contents = self.client.content.v1.contents(content_sid)
        self._call(contents.delete, retry_garbled=True)

    def _call(self, request: Any, *, retry_garbled: bool) -> Any:
        try:
            return request()
        except (TwilioRestException, TwilioServiceException, requests.RequestException) as exc:
            failed = send_error(exc, "the template")
            raise ContentApiError(failed.message, failed.status, failed.code, failed.retryable) from exc
        except ValueError as exc:
            # A 2xx answer that is not JSON: a create may have happened, so only reads retry.
            message = f"Twilio's answer could not be read: {exc}"
            raise ContentApiError(message, code="bad_response", retryable=retry_garbled) from exc


def _check_sid(content_sid: str) -> None:
    if not CONTENT_SID.fullmatch(content_sid or ""):
        raise TemplateError("content_sid", f"must be HX followed by 32 hex digits, got {content_sid!r}")
