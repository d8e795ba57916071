"""Template header files: recognised by their bytes, size-checked, stored once, served to Twilio."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import select

from campaigns.models import TemplateVersion
from web.cli import cli as group

# A real 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
TEMPLATE = """template: poster
channel: whatsapp
category: announcement
languages:
  en:
    body: "Polling day is 20 November."
    media: {file: FILE}
"""


@pytest.fixture
def run(app):  # type: ignore[no-untyped-def]
    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(group, list(args), obj=ScriptInfo(create_app=lambda: app))

    return invoke


def test_a_header_file_is_stored_and_served(app, client, run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "poster.png").write_bytes(PNG)
    spec = tmp_path / "poster.yaml"
    spec.write_text(TEMPLATE.replace("FILE", "poster.png"))
    loaded = run("templates", "load", str(spec))
    assert loaded.exit_code == 0, loaded.output
    name = hashlib.sha256(PNG).hexdigest() + ".png"
    with app.extensions["canvass"].db.session() as db:
        version = db.scalar(select(TemplateVersion))
        assert version is not None
        assert (version.media_url, version.media_kind) == (f"http://127.0.0.1:5000/media/{name}", "image")
    served = client.get(f"/media/{name}")
    assert served.status_code == 200 and served.data == PNG and served.mimetype == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    served.close()
    assert "unchanged" in run("templates", "load", str(spec)).output  # the same file: the same URL
    for bad in ("../secret_key", "0" * 64 + ".png", "x.png"):
        assert client.get(f"/media/{bad}").status_code == 404


def test_a_program_called_png_is_refused_at_its_line(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "poster.png").write_bytes(b"MZ\x90\x00" + b"\x00" * 600)
    spec = tmp_path / "poster.yaml"
    spec.write_text(TEMPLATE.replace("FILE", "poster.png"))
    result = run("templates", "load", str(spec))
    assert result.exit_code == 1 and f"{spec}:7:12: languages.en.media:" in result.output
    spec.write_text(TEMPLATE.replace("FILE", "missing.png"))
    assert "no such file" in run("templates", "load", str(spec)).output


def test_the_api_takes_urls_never_server_paths(app, client) -> None:  # type: ignore[no-untyped-def]
    from web.users import create_user, issue_token

    with app.extensions["canvass"].db.session() as s:
        token = issue_token(s, create_user(s, "ed@x.org", "editor", "a long passphrase"))
    body = TEMPLATE.replace("FILE", "/etc/passwd")
    answer = client.post(
        "/api/v1/templates", data=body, content_type="application/yaml", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 422 and "only be loaded from the command line" in answer.get_json()["message"]
