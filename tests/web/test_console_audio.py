"""The audio page: editors upload and name recordings, everyone listens, flows play them by name."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.mediastore import MediaStore
from tests.conftest import csrf_token
from tests.ivr.conftest import assert_telephone_wav
from tests.web.test_security import ROLES, WHO, signed_in
from web.auth.access import endpoint_rule
from web.models import Role


def upload(client, path: Path | None, name: str = "", *, token: str | None = None, filename: str | None = None):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"csrf_token": csrf_token(client, "/audio") if token is None else token, "name": name}
    if path is not None:
        data["file"] = (io.BytesIO(path.read_bytes()), filename or path.name)
    return client.post("/audio", data=data, content_type="multipart/form-data")


def named(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return MediaStore(app.extensions["canvass"].settings.var_dir).names()


@pytest.mark.parametrize("who", WHO, ids=lambda w: w or "anonymous")
def test_who_may_listen_and_who_may_upload(app, client, tone, who) -> None:  # type: ignore[no-untyped-def]
    assert endpoint_rule(app, "console.audio") == Role.VIEWER
    assert endpoint_rule(app, "console.audio_upload") == Role.EDITOR
    if who is None:
        assert client.get("/audio").status_code == 302
        assert client.post("/audio", data={"csrf_token": csrf_token(client, "/login")}).status_code == 401
        return
    signed_in(app, client, who)
    page = client.get("/audio").get_data(as_text=True)
    may = ROLES.index(who) >= ROLES.index("editor")
    assert ("Upload a recording" in page) == may
    response = upload(client, tone("greeting.mp3"), "welcome_hi.mp3", token=csrf_token(client, "/"))
    assert response.status_code == (302 if may else 403)
    assert named(app) == ({"welcome_hi.mp3": named(app).get("welcome_hi.mp3", "")} if may else {})


def test_an_uploaded_recording_is_named_listed_and_served_as_telephone_audio(app, client, tone, tmp_path) -> None:  # type: ignore[no-untyped-def]
    signed_in(app, client, "editor")
    response = upload(client, tone("greeting.mp3", seconds=1.5), "media/hi/welcome.mp3")
    assert response.status_code == 302
    page = client.get("/audio").get_data(as_text=True)
    assert "Stored hi/welcome.mp3 (1.5 s). Flows play it with: play: media/hi/welcome.mp3" in page
    assert "<code>play: media/hi/welcome.mp3</code>" in page and 'src="/media/hi/welcome.mp3"' in page
    wav = tmp_path / "served.wav"
    with client.get("/media/hi/welcome.mp3") as served:  # Twilio fetches it without a login
        assert served.status_code == 200 and served.mimetype == "audio/wav"
        assert served.headers["Cache-Control"] == "public, max-age=60"  # a name may move to a new recording
        wav.write_bytes(served.data)
    assert abs(assert_telephone_wav(wav) - 1.5) < 0.05
    # The name given again moves to the new recording.
    assert upload(client, tone("greeting2.wav", seconds=0.5), "hi/welcome.mp3").status_code == 302
    with client.get("/media/hi/welcome.mp3") as served:
        wav.write_bytes(served.data)
    assert abs(assert_telephone_wav(wav) - 0.5) < 0.05


def test_a_file_that_is_not_sound_is_refused_with_its_name_and_nothing_is_named(app, client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    signed_in(app, client, "editor")
    fake = tmp_path / "fake.mp3"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 2048)
    response = upload(client, fake, "welcome.mp3")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "fake.mp3:" in page and "Nothing was stored." in page
    assert 'value="welcome.mp3"' in page  # what was typed is kept
    assert named(app) == {}
    missing = upload(client, None, "welcome.mp3")
    assert missing.status_code == 422 and "Choose a sound file to upload." in missing.get_data(as_text=True)


@pytest.mark.parametrize("bad", ["../secrets.mp3", "welcome", "a b.mp3", "x//y.mp3"])
def test_a_bad_name_is_refused_but_the_recording_is_kept(app, client, tone, bad) -> None:  # type: ignore[no-untyped-def]
    signed_in(app, client, "editor")
    response = upload(client, tone("greeting.mp3", seconds=0.5), bad)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "is not a usable name" in page
    assert "stored without a name" in page and named(app) == {}
    assert client.get(f"/media/{bad}").status_code == 404


def test_uploading_needs_the_csrf_token(app, client, tone) -> None:  # type: ignore[no-untyped-def]
    signed_in(app, client, "admin")
    assert upload(client, tone("greeting.mp3"), "welcome.mp3", token="").status_code == 400
    assert named(app) == {}


@pytest.mark.parametrize(
    ("source", "url"),
    [
        ("media/welcome_hi.mp3", "https://c.example.org/media/welcome_hi.mp3"),
        ("welcome_hi.mp3", "https://c.example.org/media/welcome_hi.mp3"),
        ("https://cdn.example.org/a.ogg", "https://cdn.example.org/a.ogg"),
    ],
)
def test_a_flows_play_path_is_fetched_from_the_media_store(source: str, url: str) -> None:
    assert MediaStore.absolute("https://c.example.org/", source) == url
