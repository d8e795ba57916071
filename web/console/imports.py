"""Contact imports in the browser: upload a CSV or TXT, watch the worker import it.

The upload is streamed to ``var/imports/<job id>/`` (werkzeug spools a large one to a
temporary file, never to memory) and imported by an RQ job (``bot.import_jobs``); the
page shows a progress bar that, with JavaScript, follows ``progress.json`` until the
import is done, then the counts and the rejected rows to download. Operators and up.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import flash, g, jsonify, redirect, render_template, request, send_file, url_for
from werkzeug.utils import secure_filename

from bot.import_jobs import ImportRequestError, import_progress, recent_imports, rejects_file, start_upload
from web.auth.access import requires
from web.console import bp
from web.context import runtime
from web.errors import NotFound
from web.models import Role

LABELS = {"file": "File", "tags": "Tags"}


def _tags(text: str) -> list[str]:
    """``volunteer, drive=nov`` (commas or spaces) as a list of tags."""
    return [t for t in re.split(r"[,\s]+", text) if t]


@bp.get("/contacts/import")
@requires(Role.OPERATOR)
def contacts_import() -> Any:
    """The upload form and the latest imports."""
    return render_template("console/import.html", tags="", recent=recent_imports(runtime().redis), error=None)


@bp.post("/contacts/import")
@requires(Role.OPERATOR)
def contacts_import_start() -> Any:
    """Store the upload and queue its import."""
    rt = runtime()
    tags_text = request.form.get("tags", "").strip()
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ImportRequestError("file", "choose a CSV or TXT file to import")
        filename = secure_filename(upload.filename) or "upload.csv"
        job_id = start_upload(
            rt.redis,
            rt.settings.var_dir,
            upload.filename,
            upload.save,
            tags=_tags(tags_text),
            filename=filename,
            by=g.user.email,
        )
    except ImportRequestError as exc:
        error = f"{LABELS.get(exc.field, exc.field)}: {exc.message}"
        page = render_template(
            "console/import.html", tags=tags_text, recent=recent_imports(rt.redis), error=error, field=exc.field
        )
        return page, 422
    flash(f"{filename} is uploaded; a worker imports it now.", "info")
    return redirect(url_for("console.contacts_import_page", job_id=job_id))


def _progress(job_id: str) -> dict[str, Any]:
    found = import_progress(runtime().redis, job_id)
    if found is None:
        raise NotFound(f"There is no import {job_id} (imports are kept for a week).")
    return found


@bp.get("/contacts/import/<job_id>")
@requires(Role.OPERATOR)
def contacts_import_page(job_id: str) -> Any:
    """One import's progress bar, counts and rejects."""
    return render_template("console/import_progress.html", job=_progress(job_id))


@bp.get("/contacts/import/<job_id>/progress.json")
@requires(Role.OPERATOR)
def contacts_import_progress(job_id: str) -> Any:
    """Where the import is, for the progress bar (polled every second)."""
    return jsonify(_progress(job_id))


@bp.get("/contacts/import/<job_id>/rejects.csv")
@requires(Role.OPERATOR)
def contacts_import_rejects(job_id: str) -> Any:
    """The rejected rows: line, reason and the original cells, to fix and import again."""
    job = _progress(job_id)
    path = rejects_file(runtime().settings.var_dir, job_id)
    if not job["has_rejects"] or path is None:
        raise NotFound(f"Import {job_id} has no rejected rows.")
    name = f"{Path(job['filename']).stem or 'import'}.rejects.csv"
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=name, max_age=0)
