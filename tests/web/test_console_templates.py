"""The templates pages through Flask's test client: list, template page, forms, approval, roles, CSRF."""

from __future__ import annotations

import html
import io
import json
import re
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from campaigns import operations, templates
from campaigns.models import Template, TemplateVersion
from tests.campaigns.conftest import BOOTH_SPEC, EXAMPLES, World, seed
from tests.campaigns.test_approval import content_api_app
from tests.campaigns.test_content_api import SID
from tests.campaigns.test_content_api import approval as approval_body
from tests.conftest import csrf_token
from tests.twilio_stubs import ACCOUNT_SID, FakeTwilio, running, twilio_error
from tests.web.test_security import ROLES, WHO, signed_in
from web.auth.access import endpoint_rule
from web.models import Role

HINDI = "नमस्ते {{1}}! आपका मतदान केंद्र वार्ड {{2}} में है।"


def flashes(page: str) -> list[str]:
    return [html.unescape(f) for f in re.findall(r'<p class="flash (?:info|error)" role="status">([^<]*)</p>', page)]


def field_errors(page: str) -> dict[str, str]:
    found = re.findall(r'data-error-for="(\w+)">([^<]*)</span>', page)
    return {field: html.unescape(text) for field, text in found}


def versions(world: World, name: str) -> list[TemplateVersion]:
    with world.rt.db.session() as db:
        rows = db.scalars(
            select(TemplateVersion)
            .join(Template, Template.id == TemplateVersion.template_id)
            .where(Template.name == name)
            .order_by(TemplateVersion.language, TemplateVersion.version)
        ).all()
        db.expunge_all()
        return list(rows)


def png(width: int = 2, height: int = 2, pad: int = 0) -> bytes:
    """A real PNG (a grey square), ``pad`` bytes longer through an extra ancillary chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    extra = chunk(b"teXt", b"c\x00" + b"x" * pad) if pad else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def form(**changes: Any) -> dict[str, Any]:
    """A valid new WhatsApp template form, with ``changes``."""
    data = {
        "name": "rally_invite",
        "channel": "whatsapp",
        "category": "announcement",
        "language": "en",
        "description": "Invites voters to the rally.",
        "body": "Hi {{1}}, join the rally in ward {{2}} on Sunday.",
        "sample_1": "Asha",
        "sample_2": "12",
        "button_1": "Count me in",
        "button_2": "Not this time",
        "button_3": "",
        "media_url": "",
        "media_kind": "image",
    }
    data.update(changes)
    return data


def post(client, path: str, data: dict[str, Any], *, token: str | None = None, follow: bool = False):  # type: ignore[no-untyped-def]
    body = {**data, "csrf_token": csrf_token(client, "/templates") if token is None else token}
    response = client.post(path, data=body, content_type="multipart/form-data", follow_redirects=follow)
    # A large upload's request body is a temporary file, which werkzeug's test client
    # closes only after following redirects.
    response.request.input_stream.close()
    return response


def editor(world: World, role: str = "editor"):  # type: ignore[no-untyped-def]
    return signed_in(world.app, world.app.test_client(), role)


# Who may do what ---------------------------------------------------------------------

ROUTES = [  # method, path, endpoint, least role, status when allowed
    ("GET", "/templates", "console.templates_list", "viewer", 200),
    ("GET", "/templates/booth_reminder", "console.template_page", "viewer", 200),
    ("GET", "/templates/new", "console.template_new", "editor", 200),
    ("GET", "/templates/booth_reminder/versions/new", "console.template_version_new", "editor", 200),
    ("POST", "/templates/new", "console.template_new", "editor", 302),
    ("POST", "/templates/booth_reminder/versions/new", "console.template_version_new", "editor", 302),
    ("POST", "/templates/booth_reminder/submit", "console.template_submit", "editor", 302),
    ("POST", "/templates/booth_reminder/refresh", "console.template_refresh", "editor", 302),
]
CHANGED = {"body": "Namaste {{1}}! Polling in ward {{2}} is on Sunday. Do you know your booth?", "language": "hi"}


@pytest.mark.parametrize(("method", "path", "endpoint", "least", "ok"), ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
def test_template_routes_by_role(world: World, method, path, endpoint, least, ok) -> None:  # type: ignore[no-untyped-def]
    app = world.app
    assert endpoint_rule(app, endpoint) == Role(least)  # admins pass every role check editors pass
    before = [(v.language, v.version, v.status) for v in versions(world, "booth_reminder")]
    # Those refused first (nothing may change), then the least role allowed.
    for who in [w for w in WHO if w is None or ROLES.index(w) <= ROLES.index(least)]:
        client = app.test_client()
        if who is not None:
            signed_in(app, client, who)
        token = csrf_token(client, "/" if who else "/login")
        if method == "GET":
            response = client.get(path)
        else:
            response = post(client, path, form() if path == "/templates/new" else form(**CHANGED), token=token)
        if who is None:
            assert response.status_code == (302 if method == "GET" else 401)
        elif who == least:
            assert response.status_code == ok, response.get_data(as_text=True)
        else:
            assert response.status_code == 403, who
            assert f"needs the {least} role" in response.get_data(as_text=True)
            assert [(v.language, v.version, v.status) for v in versions(world, "booth_reminder")] == before
            assert versions(world, "rally_invite") == []


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_readers_get_no_forms(world: World, role: str) -> None:
    client = editor(world, role)
    page = client.get("/templates").get_data(as_text=True)
    assert 'href="/templates/new"' not in page
    page = client.get("/templates/booth_reminder").get_data(as_text=True)
    assert "Submit for approval" not in page and "Refresh status" not in page and "New version" not in page
    assert "/versions/new" not in page and 'method="post" action="/templates' not in page
    # The preview is for everyone.
    assert 'name="value_1"' in page


def test_editors_get_the_buttons(world: World) -> None:
    client = editor(world)
    assert 'href="/templates/new"' in client.get("/templates").get_data(as_text=True)
    page = client.get("/templates/booth_reminder?language=hi").get_data(as_text=True)
    # hi is still a draft: it can be submitted.
    assert "Submit for approval" in page and "Refresh status" in page
    assert 'href="/templates/booth_reminder/versions/new?language=hi"' in page
    sms = client.get("/templates/turnout_sms").get_data(as_text=True)
    assert "Submit for approval" not in sms and "needs nobody's approval" in sms


@pytest.mark.parametrize("kind", ["none", "wrong", "other-session"])
def test_writing_needs_this_sessions_csrf_token(world: World, kind: str) -> None:
    client = editor(world)
    other = editor(world, "admin")
    token = {"none": "", "wrong": "not-a-token", "other-session": csrf_token(other, "/templates")}[kind]
    assert post(client, "/templates/new", form(), token=token).status_code == 400
    assert post(client, "/templates/booth_reminder/versions/new", form(**CHANGED), token=token).status_code == 400
    assert post(client, "/templates/booth_reminder/submit", {}, token=token).status_code == 400
    assert post(client, "/templates/booth_reminder/refresh", {}, token=token).status_code == 400
    assert versions(world, "rally_invite") == []
    assert [v.status for v in versions(world, "booth_reminder")] == ["approved", "draft"]


# Reading -----------------------------------------------------------------------------


def row(page: str, name: str) -> str:
    found = re.search(rf'<tr data-template="{name}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {name}"
    return found.group(1)


def test_list_shows_languages_statuses_versions_and_campaigns(world: World) -> None:
    world.campaign(EXAMPLES.joinpath("booth_reminder_whatsapp.yaml").read_text())
    client = editor(world, "viewer")
    page = client.get("/templates").get_data(as_text=True)
    assert '<a href="/templates">Templates</a>' in page  # in the navigation
    booth = row(page, "booth_reminder")
    assert re.search(r'data-language="en">.*?<strong>en</strong> v1</a> <span class="badge approved"', booth)
    assert re.search(r'data-language="hi">.*?<strong>hi</strong> v1</a> <span class="badge draft"', booth)
    assert "reminder" in booth and ">whatsapp<" in booth and "1 campaign<" in booth
    sms = row(page, "turnout_sms")
    assert ">sms<" in sms and "0 campaigns" in sms and "badge approved" in sms


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("channel=sms", ["turnout_sms"]),
        ("channel=whatsapp", ["booth_reminder"]),
        ("status=draft", ["booth_reminder"]),
        ("status=approved", ["booth_reminder", "turnout_sms"]),
        ("status=rejected", []),
        ("language=hi", ["booth_reminder"]),
        ("language=hi&status=approved", []),  # hi's newest version is a draft
        ("category=reminder&channel=sms", ["turnout_sms"]),
        ("category=fundraising", []),
    ],
)
def test_list_filters(world: World, query: str, shown: list[str]) -> None:
    client = editor(world, "viewer")
    page = client.get(f"/templates?{query}").get_data(as_text=True)
    assert re.findall(r'<tr data-template="(\w+)">', page) == shown
    if not shown:
        assert "No templates match." in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=sent", "status must be one of draft, submitted, approved, rejected, paused; got &#39;sent&#39;"),
        ("channel=fax", "channel must be one of whatsapp, sms"),
        ("category=gossip", "category must be one of onboarding"),
        ("language=Hindi!", "is not a language code"),
    ],
)
def test_list_refuses_unknown_filters_by_name(world: World, query: str, message: str) -> None:
    response = editor(world, "viewer").get(f"/templates?{query}")
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_list_is_paginated(world: World) -> None:
    with world.rt.db.session() as db:
        for i in range(55):
            text = f"template: t{i:02d}\nchannel: sms\nlanguages:\n  en: {{body: 'Snippet {i}'}}\n"
            templates.store(db, templates.parse_file(text, "t.yaml"))
    client = editor(world, "viewer")
    first = client.get("/templates?channel=sms").get_data(as_text=True)
    assert len(re.findall(r"<tr data-template=", first)) == 50 and "page 1 of 2" in first
    assert 'href="/templates?page=2&amp;channel=sms"' in first
    second = client.get("/templates?channel=sms&page=2").get_data(as_text=True)
    assert re.findall(r'<tr data-template="(\w+)">', second) == ["t50", "t51", "t52", "t53", "t54", "turnout_sms"]


def test_template_page_shows_body_buttons_status_history_and_preview(world: World) -> None:
    world.campaign(EXAMPLES.joinpath("booth_reminder_whatsapp.yaml").read_text())
    client = editor(world, "viewer")
    page = client.get("/templates/booth_reminder").get_data(as_text=True)
    # en comes first; its body with the placeholders marked.
    assert '<mark class="placeholder" title="placeholder 1">{{1}}</mark>' in page
    assert '<mark class="placeholder" title="placeholder 2">{{2}}</mark>' in page
    assert '<ul class="quick-replies" data-buttons><li>Yes</li><li>No</li></ul>' in page
    assert 'data-template-status="approved"' in page and "approved by the sandbox provider" in page
    assert 'data-version-row="1"' in page and "History of en" in page
    assert "Booth reminder, wards 3 and 4</a>" in page and "Used by <small>1 campaign</small>" in page
    # The preview, filled with the samples, WhatsApp style with the quick replies under the bubble.
    assert '<mark class="value">Asha</mark>! Polling in ward <mark class="value">12</mark>' in page
    assert '<div class="replies"><span>Yes</span><span>No</span></div>' in page
    assert 'name="value_1" value="Asha"' in page
    # Values typed into the preview form; an empty one is pointed out.
    page = client.get("/templates/booth_reminder?value_1=Ravi&value_2=").get_data(as_text=True)
    assert '<mark class="value">Ravi</mark>' in page and '<mark class="missing">{{2}}</mark>' in page
    assert "{{2}} has no value: a voter would never get this message." in html.unescape(page)
    hindi = client.get("/templates/booth_reminder?language=hi").get_data(as_text=True)
    assert '<mark class="value">आशा</mark>' in hindi and "<li>हाँ</li>" in hindi
    assert client.get("/templates/booth_reminder?language=fr").status_code == 404
    assert client.get("/templates/booth_reminder?language=en&version=4").status_code == 404
    assert client.get("/templates/no_such_template").status_code == 404


def test_immutability_is_said_per_version(world: World) -> None:
    world.voter("+919800000001", "ward=3")
    campaign = world.campaign(BOOTH_SPEC)
    operations.launch(world.rt, campaign.id)  # pins (and so freezes) en v1
    client = editor(world, "viewer")
    used = client.get("/templates/booth_reminder?language=en").get_data(as_text=True)
    assert "In use by a campaign since" in used and "never changed again" in used
    draft = client.get("/templates/booth_reminder?language=hi").get_data(as_text=True)
    assert "A draft: saving a change edits it in place" in draft


def test_sms_preview_counts_segments_and_encoding(world: World) -> None:
    client = editor(world, "viewer")
    page = client.get("/templates/turnout_sms").get_data(as_text=True)
    # "Hi {{1}}, ..." with no sample: {{1}} counts as 10 characters.
    body = "Hi {{1}}, polling day is 20 Nov, 7am-6pm. Will you vote? Reply 1 yes, 2 no, 3 not sure. STOP to opt out."
    units = len(body) - len("{{1}}") + 10
    assert f'data-segments="1" data-encoding="GSM-7" data-units="{units}"' in page
    hindi = client.get("/templates/turnout_sms?value_1=" + "आशा" * 20).get_data(as_text=True)
    assert 'data-segments="3" data-encoding="UCS-2"' in hindi
    assert '<div class="screen sms"' in hindi


# Writing -----------------------------------------------------------------------------


def test_a_new_whatsapp_template_with_buttons(world: World) -> None:
    client = editor(world)
    response = post(client, "/templates/new", form(body="Hi {{1}},\r\njoin the rally in ward {{2}} on Sunday."))
    assert response.status_code == 302
    assert response.headers["Location"] == "/templates/rally_invite?language=en&version=1"
    (version,) = versions(world, "rally_invite")
    assert (version.body, version.samples, version.buttons) == (
        "Hi {{1}},\njoin the rally in ward {{2}} on Sunday.",  # line ends as a phone sees them
        {"1": "Asha", "2": "12"},
        ["Count me in", "Not this time"],
    )
    assert (version.status, version.created_by, version.media_url) == ("draft", "editor@example.org", None)
    with world.rt.db.session() as db:
        template = db.scalar(select(Template).where(Template.name == "rally_invite"))
        assert template is not None
        assert (template.channel, template.category, template.description) == (
            "whatsapp",
            "announcement",
            "Invites voters to the rally.",
        )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Created rally_invite with its en version v1." in flashes(page)


def test_a_new_sms_snippet_is_approved_at_once(world: World) -> None:
    client = editor(world, "admin")
    data = form(name="booth_sms", channel="sms", language="hi", body=HINDI, sample_1="आशा", sample_2="12")
    data.update(button_1="", button_2="")
    assert post(client, "/templates/new", data).status_code == 302
    (version,) = versions(world, "booth_sms")
    assert (version.language, version.status, version.status_reason) == ("hi", "approved", "SMS needs no approval")


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": "Rally Invite"}, "name", "Name: a name of lowercase letters, digits and _"),
        ({"name": "booth_reminder"}, "name", "'booth_reminder' exists already"),
        ({"channel": "fax"}, "channel", "Channel: must be whatsapp or sms, got 'fax'"),
        ({"category": "gossip"}, "category", "Category: one of onboarding"),
        ({"language": "Hindi"}, "language", "Language: 'Hindi' is not a language code"),
        ({"description": "x" * 501}, "description", "Description: 501 characters; at most 500"),
        ({"body": "   "}, "body", "Body: the message text is required"),
        ({"body": "Hi {{1}} in {{3}}."}, "body", "{{3}} comes without {{2}}"),
        ({"body": "Hi {{name}}."}, "body", "is a named placeholder"),
        ({"body": "x" * 1025}, "body", "1025 characters; whatsapp allows at most 1024"),
        ({"sample_2": ""}, "samples", "WhatsApp's review needs an example for {{2}}"),
        ({"button_3": "A title far too long to fit"}, "buttons", "at most 3 buttons of at most 20 characters"),
        ({"button_2": "Count me in"}, "buttons", "two buttons have the same title"),
        ({"channel": "sms"}, "buttons", "SMS has no buttons"),
        ({"media_url": "http://example.org/a.png"}, "media", "url must be an https:// address"),
        ({"media_url": "https://example.org/a.gif", "media_kind": "gif"}, "media", "kind must be one of image"),
    ],
)
def test_validation_errors_name_the_field_and_keep_the_text(world: World, changes, field, words) -> None:  # type: ignore[no-untyped-def]
    client = editor(world)
    data = form(**changes)
    response = post(client, "/templates/new", data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    errors = field_errors(page)
    assert field in errors and words in errors[field], errors
    assert "nothing was stored" in page
    # What was typed comes back.
    assert html.escape(data["body"]).replace("&#x27;", "&#39;") in page
    assert f'value="{html.escape(data["sample_1"])}"' in page
    with world.rt.db.session() as db:
        assert db.scalar(select(Template).where(Template.name == "rally_invite")) is None


def upload(content: bytes, filename: str) -> tuple[io.BytesIO, str]:
    return io.BytesIO(content), filename


def test_a_header_image_upload_is_checked_by_its_bytes_and_served(world: World) -> None:
    client = editor(world)
    image = png()
    response = post(client, "/templates/new", form(media_file=upload(image, "poster.png")))
    assert response.status_code == 302
    (version,) = versions(world, "rally_invite")
    assert version.media_kind == "image" and version.media_url is not None
    assert re.fullmatch(r"http://127\.0\.0\.1:5000/media/[0-9a-f]{64}\.png", version.media_url)
    with client.get(version.media_url.removeprefix("http://127.0.0.1:5000")) as served:
        assert served.status_code == 200 and served.data == image
    page = client.get("/templates/rally_invite").get_data(as_text=True)
    # Served by canvass itself, so the preview shows it (the console's CSP allows only its own images).
    assert f'<img src="/media/{version.media_url.rsplit("/", 1)[1]}" alt="The header image">' in page


@pytest.mark.parametrize(
    ("content", "filename", "words"),
    [
        (png(pad=5_200_000), "big.png", "image is 5.2 MB; WhatsApp allows at most 5 MB"),
        (b"MZ\x90\x00" + b"\x00" * 100, "poster.png", "the file is a Windows program"),
        (b"GIF89a" + b"\x00" * 100, "anim.gif", "a GIF image (convert it to PNG)"),
        (
            b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 16_500_000,
            "clip.mp4",
            "video is 16.5 MB; WhatsApp allows at most 16 MB",
        ),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.doc", "cannot serve application/msword"),
        (b"%PDF-1.4\n" + b"x" * 100, "setup.exe", "phones would offer to run a .exe file"),
    ],
    ids=["image-over-5MB", "program-named-png", "gif", "video-over-16MB", "old-word", "exe-name"],
)
def test_header_uploads_that_are_refused(world: World, content: bytes, filename: str, words: str) -> None:
    client = editor(world)
    response = post(client, "/templates/new", form(media_file=upload(content, filename)))
    assert response.status_code == 422
    errors = field_errors(response.get_data(as_text=True))
    assert "media" in errors and words in errors["media"], errors
    assert errors["media"].endswith("(choose the file again)")
    assert versions(world, "rally_invite") == []


def test_a_header_by_url(world: World) -> None:
    client = editor(world)
    url = "https://media.example.org/rally.mp4"
    assert post(client, "/templates/new", form(media_url=url, media_kind="video")).status_code == 302
    (version,) = versions(world, "rally_invite")
    assert (version.media_url, version.media_kind) == (url, "video")
    page = client.get("/templates/rally_invite").get_data(as_text=True)
    # Not ours: named and linked, never loaded into the console.
    assert f'video: <a href="{url}"' in page and "<span>video header</span>" in page and "<img" not in page


def test_new_versions_keep_used_and_submitted_versions_unchanged(world: World) -> None:
    client = editor(world)
    # hi v1 is an unused draft: a change edits it in place.
    page = client.get("/templates/booth_reminder/versions/new?language=hi").get_data(as_text=True)
    assert "नमस्ते {{1}}!" in page and 'value="आशा"' in page and 'value="हाँ"' in page
    hindi = form(language="hi", body=HINDI, sample_1="आशा", button_1="हाँ", button_2="नहीं", category="reminder")
    response = post(client, "/templates/booth_reminder/versions/new?language=hi", hindi, follow=True)
    assert "Updated booth_reminder hi v1 in place" in flashes(response.get_data(as_text=True))[0]
    # en v1 is approved (submitted): a change makes v2, a draft, and v1 stays as it was.
    english = form(language="en", body="Namaste {{1}}! Ward {{2}} votes on Sunday.", category="reminder")
    english.update(button_1="Yes", button_2="No")
    response = post(client, "/templates/booth_reminder/versions/new?language=en", english, follow=True)
    assert "Stored booth_reminder en v2" in flashes(response.get_data(as_text=True))[0]
    found = {(v.language, v.version): v for v in versions(world, "booth_reminder")}
    assert found["hi", 1].body == HINDI
    assert found["en", 1].status == "approved" and found["en", 1].body.startswith("Namaste {{1}}! Polling in ward")
    assert (found["en", 2].status, found["en", 2].body) == ("draft", "Namaste {{1}}! Ward {{2}} votes on Sunday.")
    # The same text again adds nothing; a new language is its own v1.
    response = post(client, "/templates/booth_reminder/versions/new?language=en", english, follow=True)
    assert "Nothing changed" in flashes(response.get_data(as_text=True))[0]
    marathi = form(language="mr", body="नमस्कार {{1}}!", sample_1="आशा", category="reminder", button_2="")
    assert post(client, "/templates/booth_reminder/versions/new", marathi).status_code == 302
    assert [(v.language, v.version) for v in versions(world, "booth_reminder")] == [
        ("en", 1),
        ("en", 2),
        ("hi", 1),
        ("mr", 1),
    ]
    # The name and channel cannot change on a new version.
    renamed = {**english, "name": "other", "channel": "sms", "body": "Changed {{1}} {{2}} again."}
    assert post(client, "/templates/booth_reminder/versions/new?language=en", renamed).status_code == 302
    assert versions(world, "other") == []
    assert client.get("/templates/no_such/versions/new").status_code == 404


def test_a_new_version_keeps_the_header_unless_told_otherwise(world: World) -> None:
    client = editor(world)
    assert post(client, "/templates/new", form(media_file=upload(png(), "poster.png"))).status_code == 302
    (first,) = versions(world, "rally_invite")
    client.post("/templates/rally_invite/submit", data={"csrf_token": csrf_token(client, "/templates")})
    page = client.get("/templates/rally_invite/versions/new?language=en").get_data(as_text=True)
    assert 'name="keep_media" value="1" checked' in page
    changed = form(body="Hi {{1}}, the rally in ward {{2}} is on Monday.", keep_media="1")
    assert post(client, "/templates/rally_invite/versions/new?language=en", changed).status_code == 302
    second = versions(world, "rally_invite")[1]
    assert (second.version, second.media_url, second.media_kind) == (2, first.media_url, "image")
    # Unticked: the next version has no header.
    changed = form(body="Hi {{1}}, the rally in ward {{2}} is on Tuesday.")
    client.post("/templates/rally_invite/submit", data={"csrf_token": csrf_token(client, "/templates")})
    assert post(client, "/templates/rally_invite/versions/new?language=en", changed).status_code == 302
    assert versions(world, "rally_invite")[2].media_url is None


# Approval ----------------------------------------------------------------------------


def test_submit_and_refresh_with_the_sandbox(world: World) -> None:
    client = editor(world)
    token = csrf_token(client, "/templates")
    response = client.post("/templates/booth_reminder/submit", data={"csrf_token": token}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert flashes(page) == [
        "Submitted booth_reminder (the sandbox provider approves at once): "
        "en v1: approved (nothing to submit); hi v1: approved."
    ]
    assert [v.status for v in versions(world, "booth_reminder")] == ["approved", "approved"]
    assert "Submit for approval" not in page  # nothing left to submit
    response = client.post("/templates/booth_reminder/refresh", data={"csrf_token": token}, follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == [
        "Status of booth_reminder: en v1: approved (approved by the sandbox provider); "
        "hi v1: approved (approved by the sandbox provider)."
    ]
    # An SMS snippet has nothing to submit: said plainly.
    response = client.post("/templates/turnout_sms/submit", data={"csrf_token": token}, follow_redirects=True)
    assert flashes(response.get_data(as_text=True)) == [
        "Not submitted: turnout_sms is an sms snippet: it needs no approval"
    ]
    assert client.post("/templates/nothing/submit", data={"csrf_token": token}).status_code == 404


@pytest.fixture
def twilio(make_app) -> Iterator[tuple[World, FakeTwilio]]:  # type: ignore[no-untyped-def]
    """The app with CANVASS_PROVIDER=twilio and the Content API served by a fake on loopback."""
    with running(FakeTwilio(default=lambda: (200, {}))) as fake:
        app = content_api_app(make_app, fake.url)
        rt = app.extensions["canvass"]
        seed(rt, provider="twilio")
        yield World(rt, app), fake


def test_submit_and_refresh_through_the_content_api(twilio: tuple[World, FakeTwilio]) -> None:
    world, fake = twilio
    client = editor(world)
    token = csrf_token(client, "/templates")
    fake.answer(
        201, {"sid": SID, "account_sid": ACCOUNT_SID, "friendly_name": "booth_reminder_hi_v1", "language": "hi"}
    )
    fake.answer(201, {"name": "booth_reminder_v1", "category": "UTILITY", "status": "received"})
    response = client.post(
        "/templates/booth_reminder/submit", data={"csrf_token": token, "language": "hi"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert flashes(page) == ["Submitted booth_reminder: hi v1: submitted."]
    assert 'data-template-status="submitted"' in page and SID in page
    (create, submit) = fake.calls
    assert (create[0], create[1]) == ("POST", "/v1/Content")
    assert json.loads(create[2])["types"]["twilio/quick-reply"]["actions"][0]["title"] == "हाँ"
    assert (submit[0], submit[1]) == ("POST", f"/v1/Content/{SID}/ApprovalRequests/whatsapp")
    # WhatsApp's verdict, with its reason, on the page.
    fake.answer(200, approval_body("rejected", "INVALID_FORMAT: variable at the end"))
    response = client.post(
        "/templates/booth_reminder/refresh", data={"csrf_token": token, "language": "hi"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "hi v1: rejected (INVALID_FORMAT: variable at the end)" in flashes(page)[0]
    assert '<dd class="bad" data-status-reason>INVALID_FORMAT: variable at the end</dd>' in page
    assert 'data-template-status="rejected"' in page
    assert [v.status for v in versions(world, "booth_reminder")] == ["approved", "rejected"]


def test_content_api_errors_are_shown(twilio: tuple[World, FakeTwilio]) -> None:
    world, fake = twilio
    client = editor(world)
    token = csrf_token(client, "/templates")
    fake.answer(400, twilio_error(20001, 400, "Invalid friendly_name"))
    response = client.post("/templates/booth_reminder/submit", data={"csrf_token": token}, follow_redirects=True)
    (message,) = flashes(response.get_data(as_text=True))
    assert (
        message.startswith("Not submitted: booth_reminder hi: Twilio refused:") and "Invalid friendly_name" in message
    )
    assert [v.status for v in versions(world, "booth_reminder")] == ["approved", "draft"]
    # A submitted version whose verdict cannot be read says so, and keeps its state.
    fake.answer(201, {"sid": SID, "account_sid": ACCOUNT_SID, "friendly_name": "x", "language": "hi"})
    fake.answer(201, {"name": "booth_reminder_v1", "category": "UTILITY", "status": "pending"})
    client.post("/templates/booth_reminder/submit", data={"csrf_token": token}, follow_redirects=True)
    fake.answer(503, twilio_error(20503, 503, "Service Unavailable"))
    response = client.post("/templates/booth_reminder/refresh", data={"csrf_token": token}, follow_redirects=True)
    (message,) = flashes(response.get_data(as_text=True))
    assert message.startswith("Could not refresh: Twilio refused:") and "Service Unavailable" in message
    assert [v.status for v in versions(world, "booth_reminder")] == ["approved", "submitted"]


def test_whatsapp_review_warnings_are_said_after_saving(world: World) -> None:
    client = editor(world)
    response = post(client, "/templates/new", form(body="{{1}}, join the rally in ward {{2}}"), follow=True)
    said = flashes(response.get_data(as_text=True))
    assert said[0] == "Created rally_invite with its en version v1."
    assert said[1].startswith("WhatsApp's review would refuse this: offset 0: the body starts with {{1}}")
    assert said[2].startswith("WhatsApp's review would refuse this: offset 30: the body ends with {{2}}")


def test_an_sms_version_form_has_no_whatsapp_parts(world: World) -> None:
    page = editor(world).get("/templates/turnout_sms/versions/new?language=en").get_data(as_text=True)
    assert 'id="buttons" data-whatsapp-only hidden disabled' in page
    assert 'id="media" data-whatsapp-only hidden disabled' in page
    assert '<div class="counter-box" data-sms-only >' in page
    assert '<input type="hidden" id="channel" value="sms">' in page
