"""The audio page: recordings for calls, uploaded and named for flows to play.

Everyone signed in hears what is there; editors and admins upload. An upload is checked
by its content and stored as telephone audio exactly as ``canvass audio upload`` does
(``ivr.uploads``); given a name, a flow plays it as ``play: media/NAME``. Giving a name
again points it at the new recording: flows that play it change without an edit.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from bot.mediastore import MediaStore
from ivr.audio import AudioError
from ivr.uploads import ACCEPTED, MAX_UPLOAD_BYTES, accept_upload
from web.auth.access import requires
from web.console import bp
from web.context import runtime
from web.models import Role


@dataclasses.dataclass(frozen=True)
class Clip:
    """A named recording: the name flows use, and the stored file it points at."""

    given: str
    stored: str


@bp.get("/audio")
@requires(Role.VIEWER)
def audio() -> Any:
    """The named recordings, each with a player, and the upload form."""
    return _page()


@bp.post("/audio")
@requires(Role.EDITOR)
def audio_upload() -> Any:
    """Check, convert and store an uploaded recording; name it when asked."""
    upload = request.files.get("file")
    given = request.form.get("name", "").strip()
    if upload is None or not upload.filename:
        return _page(error=("file", "Choose a sound file to upload."), given=given), 422
    store = MediaStore(runtime().settings.var_dir)
    with tempfile.TemporaryDirectory(prefix="canvass-upload-") as tmp:
        path = Path(tmp) / "upload"
        upload.save(path)
        try:
            stored = accept_upload(path, store, field=upload.filename)
        except AudioError as exc:
            return _page(error=("file", f"{exc} Nothing was stored."), given=given), 422
    if given:
        try:
            given = store.name_as(given, stored.name)
        except ValueError as exc:
            return _page(error=("name", f"{exc}. The recording was stored without a name."), given=given), 422
    name = given or stored.name
    flash(f"Stored {name} ({stored.duration_s:.1f} s). Flows play it with: play: media/{name}", "info")
    return redirect(url_for("console.audio"))


def _page(error: tuple[str, str] | None = None, given: str = "") -> str:
    settings = runtime().settings
    clips = [Clip(g, s) for g, s in MediaStore(settings.var_dir).names().items()]
    return render_template(
        "console/audio.html",
        clips=clips,
        error=error,
        given=given,
        accepted=ACCEPTED,
        max_mb=MAX_UPLOAD_BYTES // 2**20,
    )
