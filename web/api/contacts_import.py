"""REST API: import a contacts file in the background, then follow it (a thin layer over bot/).

The work is ``bot.contact_import`` run by a worker job (``bot.upload_imports``): upserts
on the phone number, every rejected row kept with its line and reason, all or nothing.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, send_file, url_for

from bot.contacts import parse_tag
from bot.upload_imports import UploadError, import_progress, rejects_file, start_import
from web.api import bp
from web.auth.access import requires
from web.context import runtime
from web.errors import BadInput, NotFound
from web.models import Role


@bp.post("/contacts/imports")
@requires(Role.OPERATOR)
def start_contacts_import() -> Any:
    """Upload a CSV or TXT file (multipart field ``file``, optional ``tags``); answers the job id (202)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise BadInput("send the file as multipart/form-data in a field named file", field="file")
    tags = [t for raw in request.form.getlist("tags") for t in raw.split(",") if t.strip()]
    try:
        for tag in tags:
            parse_tag(tag)
        job_id = start_import(runtime(), upload.stream, upload.filename, tags)
    except UploadError as exc:
        raise BadInput(str(exc), field=exc.field) from None
    except ValueError as exc:
        raise BadInput(str(exc), field="tags") from None
    return jsonify({"job_id": job_id, "state": "queued", "url": url_for("api.contacts_import", job_id=job_id)}), 202


@bp.get("/contacts/imports/<job_id>")
@requires(Role.OPERATOR)
def contacts_import(job_id: str) -> Any:
    """An import's state (queued, started, finished, failed), the share of the file read, and its report."""
    found = import_progress(runtime().redis, job_id)
    if found is None:
        raise NotFound(f"no import {job_id!r}", field="job_id")
    report = None
    if found.report is not None and not found.error:
        report = {k: found.report.get(k, 0) for k in ("imported", "updated", "rejected")}
    rejects = rejects_file(runtime(), job_id) if found.state == "finished" else None
    return jsonify(
        {
            "job_id": found.job_id,
            "state": found.state,
            "progress": found.progress,
            "report": report,
            "error": found.error,
            "rejects_url": url_for("api.contacts_import_rejects", job_id=job_id) if rejects else None,
        }
    )


@bp.get("/contacts/imports/<job_id>/rejects.csv")
@requires(Role.OPERATOR)
def contacts_import_rejects(job_id: str) -> Any:
    """The rejected rows: line, reason and the original cells (fix them there and import that file)."""
    path = rejects_file(runtime(), job_id)
    if path is None:
        raise NotFound(f"import {job_id!r} has no rejected rows (or does not exist)", field="job_id")
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=f"{job_id}.rejects.csv")
