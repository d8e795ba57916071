"""Files Twilio fetches: template header images and documents (later, call audio).

Public by necessity (Twilio fetches without our login) but unguessable and read-only:
names are the SHA-256 of the content, and only such names are served.
"""

from __future__ import annotations

from flask import Blueprint, Response, send_file

from bot.mediastore import MediaStore
from web.auth.access import public
from web.context import runtime
from web.errors import NotFound

bp = Blueprint("media", __name__)


@bp.get("/media/<name>")
@public
def serve(name: str) -> Response:
    """A stored file, with its content type (never sniffed by the browser)."""
    store = MediaStore(runtime().settings.var_dir)
    path = store.path(name)
    if path is None:
        raise NotFound("no such media file")
    response = send_file(path, mimetype=store.content_type(name), max_age=7 * 24 * 3600, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
