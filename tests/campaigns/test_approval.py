"""Template approval: the sandbox approves at once; with Twilio, through the Content API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from campaigns import approval, templates
from campaigns.models import TemplateVersion
from tests.campaigns.conftest import EXAMPLES
from tests.campaigns.test_content_api import SID
from tests.campaigns.test_content_api import approval as approval_body
from tests.twilio_stubs import ACCOUNT_SID, FakeTwilio, running, twilio_error


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with running(FakeTwilio(default=lambda: (200, {}))) as server:
        yield server


def content_api_app(make_app, content_api_base: str):  # type: ignore[no-untyped-def]
    """The app with CANVASS_PROVIDER=twilio, its Content API at ``content_api_base``."""
    return make_app(
        CANVASS_PROVIDER="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN="secret",
        PUBLIC_BASE_URL="https://canvass.example.org",
        TWILIO_CONTENT_API_BASE=content_api_base,
    )


def test_submit_and_refresh_through_the_content_api(make_app, fake: FakeTwilio) -> None:  # type: ignore[no-untyped-def]
    rt = content_api_app(make_app, fake.url).extensions["canvass"]
    path = EXAMPLES / "booth_reminder.template.yaml"
    with rt.db.session() as db:
        templates.store(db, templates.parse_file(path.read_text(), str(path)))
    fake.answer(
        201, {"sid": SID, "account_sid": ACCOUNT_SID, "friendly_name": "booth_reminder_en_v1", "language": "en"}
    )
    # Twilio answers an approval request with the request itself: status at the top.
    fake.answer(201, {"name": "booth_reminder_v1", "category": "UTILITY", "status": "received"})
    with rt.db.session() as db:
        done = approval.submit(db, rt.settings, "booth_reminder", language="en")
    assert done == [("en", 1, "submitted")]
    (create, submit) = fake.calls
    assert (create[0], create[1]) == ("POST", "/v1/Content")
    body = json.loads(create[2])
    assert body["types"]["twilio/quick-reply"]["actions"][0]["title"] == "Yes"
    assert body["variables"] == {"1": "Asha", "2": "12"}
    assert (submit[0], submit[1]) == ("POST", f"/v1/Content/{SID}/ApprovalRequests/whatsapp")
    assert json.loads(submit[2])["category"] == "UTILITY"
    fake.answer(200, approval_body("rejected", "INVALID_FORMAT: variable at the end"))
    with rt.db.session() as db:
        assert approval.refresh(db, rt.settings, "booth_reminder")[0] == (
            "en",
            1,
            "rejected (INVALID_FORMAT: variable at the end)",
        )
        version = db.scalar(select(TemplateVersion).where(TemplateVersion.language == "en"))
        assert version is not None and (version.content_sid, version.status) == (SID, "rejected")
    # Twilio refusing the request is an error naming the template, and nothing changes.
    fake.answer(400, twilio_error(20001, 400, "Invalid friendly_name"))
    with rt.db.session() as db, pytest.raises(approval.ApprovalError, match="booth_reminder hi: Twilio refused"):
        approval.submit(db, rt.settings, "booth_reminder", language="hi")
