"""Twilio's Content API client, with the real twilio SDK.

* Request shapes: every request canvass sends (create text / quick-reply / media / card,
  submit for approval, fetch the approval, delete) is checked by Stoplight Prism against
  Twilio's own OpenAPI document of the Content API; negative controls prove that Prism
  refuses a malformed request (422), so these tests can fail.
* Behaviour: a fake Content API on loopback answers with approval statuses, 429, 5xx,
  error bodies, garbage and stalls, for the status mapping and the error classification.
* Drafts, categories and the Content type chosen, without any network.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest.content.v1.content import ContentList
from twilio.rest.content.v1.content.approval_create import ApprovalCreateList

from bot.channels.twilio_base import TwilioAccount, make_client
from campaigns.content_api import (
    CATEGORIES,
    STATES,
    ApprovalState,
    ContentApi,
    ContentApiError,
    ContentDraft,
    TemplateError,
    approval_state,
    content_types,
    whatsapp_category,
)
from tests.fakes.prism import PrismHttpClient
from tests.fakes.twilio_http import free_port
from tests.twilio_stubs import ACCOUNT_SID, FIXTURES, REFUSALS, FakeTwilio, running, start_prism, twilio_error

SPEC = FIXTURES / "twilio_content_v1.json"
SID = "HX" + "0123456789abcdef" * 2
IMAGE = "https://media.canvass.example.org/booth-12.jpg"

TEXT = ContentDraft("booth_reminder_hi", "hi", "नमस्ते {{1}}, आपका मतदान केंद्र {{2}} है।", {"1": "Asha", "2": "Ward 12"})
QUICK_REPLY = ContentDraft(
    "will_you_vote", "en", "Will you vote on Sunday, {{1}}?", {"1": "Asha"}, ("Yes", "No", "Not sure")
)
MEDIA = ContentDraft("booth_map", "en_US", "Your booth, {{1}}: see the map.", {"1": "Asha"}, media_url=IMAGE)
CARD = ContentDraft("rally", "en", "Join the rally, {{1}}.", {1: "Asha"}, ["Count me in", "No"], IMAGE)


def account(base: str, **kwargs: Any) -> TwilioAccount:
    return TwilioAccount(ACCOUNT_SID, "test-auth-token", content_api_base=base, **kwargs)


# --- Drafts and the Content type they become (no network) ---------------------------------


def test_content_types_per_draft_shape() -> None:
    assert content_types(TEXT) == {"twilio/text": {"body": TEXT.body}}
    assert content_types(QUICK_REPLY) == {
        "twilio/quick-reply": {
            "body": QUICK_REPLY.body,
            "actions": [{"type": "QUICK_REPLY", "title": t, "id": t} for t in ("Yes", "No", "Not sure")],
        }
    }
    assert content_types(MEDIA) == {"twilio/media": {"body": MEDIA.body, "media": [IMAGE]}}
    assert list(content_types(CARD)) == ["twilio/card"]
    assert content_types(CARD)["twilio/card"]["title"] == CARD.body


def test_draft_normalises_samples_and_buttons() -> None:
    assert CARD.samples == {"1": "Asha"}
    assert ContentDraft("t", "en", "Ward {{1}}.", {1: 12}).samples == {"1": "12"}
    assert CARD.buttons == ("Count me in", "No")


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"friendly_name": " "}, "friendly_name", "empty"),
        ({"language": "Hindi"}, "language", "'Hindi'"),
        ({"body": ""}, "body", "1 to 1024"),
        ({"body": "x" * 1025}, "body", "1 to 1024"),
        ({"body": "Hi {{name}}"}, "body", "offset 3: {{name}} is a named placeholder"),
        ({"body": "Hi {{1}} and {{3}}.", "samples": {"1": "a", "3": "c"}}, "body", "without {{2}}"),
        ({"samples": {}}, "samples.1", "sample value for {{1}}"),
        ({"samples": {"1": " "}}, "samples.1", "sample value for {{1}}"),
        ({"samples": {"1": None}}, "samples.1", "sample value for {{1}}"),
        ({"samples": {"1": "Asha", "2": "extra"}}, "samples.2", "no such placeholder"),
        ({"buttons": ("a", "b", "c", "d")}, "buttons", "at most 3"),
        ({"buttons": ("Yes", "x" * 21)}, "buttons[1]", "1 to 20"),
        ({"buttons": ("",)}, "buttons[0]", "1 to 20"),
        ({"buttons": ("Yes", "Yes")}, "buttons", "same title"),
        ({"media_url": "booth.jpg"}, "media_url", "http(s) URL"),
        ({"media_url": "ftp://x.example/a.jpg"}, "media_url", "http(s) URL"),
    ],
)
def test_invalid_drafts_name_the_field(kwargs: dict[str, Any], field: str, words: str) -> None:
    base = {"friendly_name": "t", "language": "en", "body": "Hi {{1}}.", "samples": {"1": "Asha"}}
    with pytest.raises(TemplateError) as caught:
        ContentDraft(**{**base, **kwargs})
    assert caught.value.field == field
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("ours", "whatsapp"),
    [
        ("reminder", "UTILITY"),
        ("onboarding", "UTILITY"),
        ("grievance_update", "UTILITY"),
        ("fundraising", "MARKETING"),
        ("Marketing", "MARKETING"),
        ("UTILITY", "UTILITY"),
        ("authentication", "AUTHENTICATION"),
    ],
)
def test_categories(ours: str, whatsapp: str) -> None:
    assert whatsapp_category(ours) == whatsapp


def test_an_unknown_category_lists_the_known_ones() -> None:
    with pytest.raises(TemplateError) as caught:
        whatsapp_category("gotv")
    assert caught.value.field == "category"
    assert all(name in caught.value.message for name in CATEGORIES)


@pytest.fixture
def offline() -> Iterator[ContentApi]:
    api = ContentApi(account(f"http://127.0.0.1:{free_port()}"))  # never contacted
    yield api
    api.close()


@pytest.mark.parametrize("name", ["Booth_Reminder", "booth reminder", "booth-reminder", "", "x" * 513, "बूथ"])
def test_submit_refuses_bad_template_names(offline: ContentApi, name: str) -> None:
    with pytest.raises(TemplateError) as caught:
        offline.submit(SID, name, "reminder")
    assert caught.value.field == "name"
    assert "lowercase letters, digits and underscores" in caught.value.message


@pytest.mark.parametrize("call", ["submit", "refresh", "delete"])
def test_content_sids_are_checked(offline: ContentApi, call: str) -> None:
    args = ("HX123", "booth_reminder", "reminder") if call == "submit" else ("HX123",)
    with pytest.raises(TemplateError) as caught:
        getattr(offline, call)(*args)
    assert caught.value.field == "content_sid"


def test_make_client_points_the_content_domain_at_its_base() -> None:
    api = ContentApi(account("http://127.0.0.1:4010/", timeout_s=3.0))
    try:
        assert api.client.content.base_url == "http://127.0.0.1:4010"
        assert api.client.content.v1.contents._version.domain is api.client.content
        assert api.client.http_client.timeout == 3.0
    finally:
        api.close()


def test_states_cover_the_whatsapp_statuses() -> None:
    documented = {"unsubmitted", "received", "pending", "approved", "rejected", "paused", "disabled"}
    assert documented <= set(STATES)
    assert set(STATES.values()) == {"draft", "submitted", "approved", "rejected", "paused"}


# --- Request shapes against Twilio's Content API document (Prism) -------------------------


@pytest.fixture(scope="session")
def content_prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prism serving Twilio's Content API v1 document, for the whole session."""
    with start_prism(SPEC, tmp_path_factory.mktemp("prism-content")) as url:
        yield url


@pytest.fixture
def prism(content_prism_url: str) -> Iterator[tuple[ContentApi, PrismHttpClient]]:
    acc = account(content_prism_url)
    http = PrismHttpClient(TwilioHttpClient(timeout=acc.timeout_s))
    api = ContentApi(acc, client=make_client(acc, http_client=http))
    yield api, http
    api.close()


@pytest.mark.slow
@pytest.mark.parametrize("draft", [TEXT, QUICK_REPLY, MEDIA, CARD], ids=["text", "quick_reply", "media", "card"])
def test_create_matches_the_schema(prism: tuple[ContentApi, PrismHttpClient], draft: ContentDraft) -> None:
    api, http = prism
    sid = api.create(draft)
    assert http.statuses == [201], http.statuses
    assert sid.startswith("HX")  # Prism's fixed example
    (sent,) = http.sent
    assert sent == {
        "friendly_name": draft.friendly_name,
        "language": draft.language,
        "variables": dict(draft.samples),
        "types": content_types(draft),
    }


@pytest.mark.slow
def test_submit_matches_the_schema(prism: tuple[ContentApi, PrismHttpClient]) -> None:
    api, http = prism
    state = api.submit(SID, "booth_reminder_hi", "reminder")
    assert http.statuses == [201]
    assert http.sent == [{"name": "booth_reminder_hi", "category": "UTILITY"}]
    # Prism's example answer: status "unsubmitted", name "tree_fiddy".
    assert state == ApprovalState("draft", "unsubmitted", None, "tree_fiddy", "UTILITY")


@pytest.mark.slow
def test_refresh_and_delete_match_the_schema(prism: tuple[ContentApi, PrismHttpClient]) -> None:
    api, http = prism
    assert api.refresh(SID) == ApprovalState("approved", "approved", None, "tree_fiddy", "UTILITY")
    api.delete(SID)
    assert http.statuses == [200, 204]


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_factory",
    [
        lambda c: c.content.v1.contents.create(
            ContentList.ContentCreateRequest({"friendly_name": "x", "types": {"twilio/text": {"body": "Hi"}}})
        ),
        lambda c: c.content.v1.contents.create(
            ContentList.ContentCreateRequest(
                {"language": "en", "types": {"twilio/quick-reply": {"body": "Hi", "actions": [{"payload": "yes"}]}}}
            )
        ),
        lambda c: c.content.v1.contents(SID).approval_create.create(
            ApprovalCreateList.ContentApprovalRequest({"name": "booth_reminder"})
        ),
        lambda c: c.content.v1.contents("HX123").approval_create.create(
            ApprovalCreateList.ContentApprovalRequest({"name": "booth_reminder", "category": "UTILITY"})
        ),
    ],
    ids=["create_without_language", "quick_reply_action_without_title", "submit_without_category", "bad_sid"],
)
def test_prism_refuses_a_malformed_request(prism: tuple[ContentApi, PrismHttpClient], request_factory: Any) -> None:
    """Negative control: the mock really validates (our own checks are bypassed here)."""
    api, http = prism
    with pytest.raises(ContentApiError) as caught:
        api._call(lambda: request_factory(api.client), retry_garbled=False)
    assert http.statuses == [422]  # a schema violation, not 401 (auth) or 404 (route)
    assert (caught.value.status, caught.value.retryable) == (422, False)


# --- Behaviour against a fake Content API -------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with running(FakeTwilio(default=lambda: (200, {}))) as server:
        yield server


@pytest.fixture
def api(fake: FakeTwilio) -> Iterator[ContentApi]:
    client = ContentApi(account(fake.url, timeout_s=1.0))
    yield client
    client.close()


def approval(status: str, reason: str = "") -> dict[str, Any]:
    whatsapp = {"type": "whatsapp", "name": "booth_reminder_hi", "category": "UTILITY", "status": status}
    return {
        "sid": SID,
        "account_sid": ACCOUNT_SID,
        "whatsapp": {**whatsapp, "content_type": "twilio/text", "rejection_reason": reason},
        "url": f"https://content.twilio.com/v1/Content/{SID}/ApprovalRequests",
    }


@pytest.mark.parametrize(
    ("status", "reason", "state", "kept"),
    [
        ("unsubmitted", "", "draft", None),
        ("received", "", "submitted", None),
        ("pending", "", "submitted", None),
        ("in_appeal", "", "submitted", None),
        ("approved", "", "approved", None),
        (
            "rejected",
            "INVALID_FORMAT: a placeholder at the end",
            "rejected",
            "INVALID_FORMAT: a placeholder at the end",
        ),
        ("paused", "Low quality", "paused", "Low quality"),
        ("disabled", "", "rejected", "disabled by WhatsApp"),
        ("APPROVED", "", "approved", None),
    ],
)
def test_refresh_maps_whatsapp_statuses(
    fake: FakeTwilio, api: ContentApi, status: str, reason: str, state: str, kept: str | None
) -> None:
    fake.answer(200, approval(status, reason))
    result = api.refresh(SID)
    assert (result.status, result.whatsapp_status, result.reason) == (state, status.lower(), kept)
    assert (result.name, result.category) == ("booth_reminder_hi", "UTILITY")
    ((method, path, _body),) = fake.calls
    assert (method, path) == ("GET", f"/v1/Content/{SID}/ApprovalRequests")


@pytest.mark.parametrize("whatsapp", [None, {}])
def test_refresh_of_a_never_submitted_template_is_draft(
    fake: FakeTwilio, api: ContentApi, whatsapp: dict[str, Any] | None
) -> None:
    fake.answer(200, {"sid": SID, "account_sid": ACCOUNT_SID, "whatsapp": whatsapp, "url": None})
    assert api.refresh(SID) == ApprovalState("draft", "unsubmitted")


def test_an_unknown_status_is_an_error_not_an_approval(fake: FakeTwilio, api: ContentApi) -> None:
    fake.answer(200, approval("exploded"))
    with pytest.raises(ContentApiError) as caught:
        api.refresh(SID)
    assert (caught.value.code, caught.value.retryable) == ("unknown_status", False)
    assert "'exploded'" in caught.value.message


def test_create_through_the_fake(fake: FakeTwilio, api: ContentApi) -> None:
    fake.answer(201, {"sid": SID, "account_sid": ACCOUNT_SID, "friendly_name": "will_you_vote", "language": "en"})
    assert api.create(QUICK_REPLY) == SID
    ((method, path, body),) = fake.calls
    assert (method, path) == ("POST", "/v1/Content")
    sent = json.loads(body)
    assert sent["types"]["twilio/quick-reply"]["actions"][2] == {
        "type": "QUICK_REPLY",
        "title": "Not sure",
        "id": "Not sure",
    }
    assert sent["variables"] == {"1": "Asha"}


def test_submit_through_the_fake(fake: FakeTwilio, api: ContentApi) -> None:
    fake.answer(
        201, {"name": "rally_fundraiser", "category": "MARKETING", "status": "received", "rejection_reason": ""}
    )
    state = api.submit(SID, "rally_fundraiser", "fundraising")
    assert state == ApprovalState("submitted", "received", None, "rally_fundraiser", "MARKETING")
    ((method, path, body),) = fake.calls
    assert (method, path) == ("POST", f"/v1/Content/{SID}/ApprovalRequests/whatsapp")
    assert json.loads(body) == {"name": "rally_fundraiser", "category": "MARKETING"}


def test_delete_through_the_fake(fake: FakeTwilio, api: ContentApi) -> None:
    fake.answer(204, None)
    api.delete(SID)
    assert [(m, p) for m, p, _b in fake.calls] == [("DELETE", f"/v1/Content/{SID}")]


@pytest.mark.parametrize(
    ("status", "body", "retryable", "code"),
    [
        *REFUSALS,
        (400, twilio_error(20001, 400, "Invalid content: body is too long"), False, "20001"),
        (404, twilio_error(20404, 404, "The requested resource was not found"), False, "20404"),
    ],
)
def test_refusals_are_classified(
    fake: FakeTwilio, api: ContentApi, status: int, body: Any, retryable: bool, code: str | None
) -> None:
    fake.answer(status, body)
    with pytest.raises(ContentApiError) as caught:
        api.submit(SID, "booth_reminder", "reminder")
    error = caught.value
    assert (error.status, error.code, error.retryable) == (status, code, retryable)
    assert f"HTTP {status}" in error.message
    text = body.get("message") or body.get("title") if isinstance(body, dict) else None
    if text:
        assert text in error.message  # Twilio's own words reach the operator


def test_an_unreadable_answer(fake: FakeTwilio, api: ContentApi) -> None:
    fake.answer(201, "<html>oops</html>")
    with pytest.raises(ContentApiError) as caught:
        api.create(TEXT)
    assert (caught.value.code, caught.value.retryable) == ("bad_response", False)  # may have been created
    fake.answer(200, "<html>oops</html>")
    with pytest.raises(ContentApiError) as caught:
        api.refresh(SID)
    assert (caught.value.code, caught.value.retryable) == ("bad_response", True)  # a read: safe to repeat


def test_an_answer_without_a_sid(fake: FakeTwilio, api: ContentApi) -> None:
    fake.answer(201, {"account_sid": ACCOUNT_SID})
    with pytest.raises(ContentApiError) as caught:
        api.create(TEXT)
    assert caught.value.code == "bad_response"


def test_a_stalled_server_times_out(fake: FakeTwilio, api: ContentApi) -> None:
    fake.answer(200, approval("approved"), delay=30.0)
    started = time.monotonic()
    with pytest.raises(ContentApiError) as caught:
        api.refresh(SID)
    assert (caught.value.retryable, caught.value.code) == (True, "timeout")
    assert 0.9 <= time.monotonic() - started < 2.0


def test_a_refused_connection_is_retryable() -> None:
    api = ContentApi(account(f"http://127.0.0.1:{free_port()}", timeout_s=1.0))
    try:
        with pytest.raises(ContentApiError) as caught:
            api.refresh(SID)
    finally:
        api.close()
    assert (caught.value.retryable, caught.value.code) == (True, "connection")


def test_approval_state_without_network() -> None:
    assert approval_state({"status": "rejected", "rejection_reason": "  "}) == ApprovalState("rejected", "rejected")
