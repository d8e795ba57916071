"""Files Twilio fetches: template header images and documents (later, call audio).

Public by necessity (Twilio fetches without our login) and read-only: files are stored
under the SHA-256 of their content; staff may give an audio file a name of their own
(``welcome_hi.mp3``) for flows to play, and such names are served too.
"""

from __future__ import annotations

from flask import Blueprint, Response, send_file

from bot.mediastore import MediaStore
from web.auth.access import public
from web.context import runtime
from web.errors import NotFound

bp = Blueprint("media", __name__)


@bp.get("/media/<path:name>")
@public
def serve(name: str) -> Response:
    """A stored file, with its content type (never sniffed by the browser).

    Content names never change what they hold and are cached for a week; a given name
    (``welcome_hi.mp3``) may be moved to a new recording, so it is cached for a minute.
    """
    store = MediaStore(runtime().settings.var_dir)
    path = store.path(name)
    if path is None:
        raise NotFound("no such media file")
    max_age = 7 * 24 * 3600 if path.name == name else 60
    response = send_file(path, mimetype=store.content_type(name), max_age=max_age, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
