"""REST API: import a contacts file in the background, then follow it (a thin layer over bot/).

The work is ``bot.contact_import`` run by a worker job (``bot.import_jobs``, the same job
as the console's imports): upserts on the phone number, every rejected row kept with its
line and reason, all or nothing. The API names the job's states its own way: ``started``
for running, and a file the importer refuses as a whole (no phone column, broken quoting)
is a finished job with an ``error`` and no report.
"""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request, send_file, url_for
from werkzeug.utils import secure_filename

from bot.import_jobs import ImportRequestError, import_progress, rejects_file, start_upload
from web.api import bp
from web.auth.access import requires
from web.context import runtime
from web.errors import BadInput, NotFound
from web.models import Role

STATES = {"running": "started"}  # import_jobs' state -> the API's


@bp.post("/contacts/imports")
@requires(Role.OPERATOR)
def start_contacts_import() -> Any:
    """Upload a CSV or TXT file (multipart field ``file``, optional ``tags``); answers the job id (202)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise BadInput("send the file as multipart/form-data in a field named file", field="file")
    tags = [t for raw in request.form.getlist("tags") for t in raw.split(",") if t.strip()]
    rt = runtime()
    try:
        job_id = start_upload(
            rt.redis,
            rt.settings.var_dir,
            upload.filename,
            upload.save,
            tags=tags,
            filename=secure_filename(upload.filename) or "upload.csv",
            by=g.user.email,
        )
    except ImportRequestError as exc:
        raise BadInput(exc.message, field=exc.field) from None
    return jsonify({"job_id": job_id, "state": "queued", "url": url_for("api.contacts_import", job_id=job_id)}), 202


@bp.get("/contacts/imports/<job_id>")
@requires(Role.OPERATOR)
def contacts_import(job_id: str) -> Any:
    """An import's state (queued, started, finished, failed), the share of the file read, and its report."""
    found = import_progress(runtime().redis, job_id)
    if found is None:
        raise NotFound(f"no import {job_id!r}", field="job_id")
    state = "finished" if found["refused"] else STATES.get(found["state"], found["state"])
    imported = found["state"] == "finished"
    report = {k: found[k] for k in ("imported", "updated", "rejected")} if imported else None
    rejects = imported and found["has_rejects"] and rejects_file(runtime().settings.var_dir, job_id)
    return jsonify(
        {
            "job_id": job_id,
            "state": state,
            "progress": 1.0 if state == "finished" else found["percent"] / 100,
            "report": report,
            "error": found["error"],
            "rejects_url": url_for("api.contacts_import_rejects", job_id=job_id) if rejects else None,
        }
    )


@bp.get("/contacts/imports/<job_id>/rejects.csv")
@requires(Role.OPERATOR)
def contacts_import_rejects(job_id: str) -> Any:
    """The rejected rows: line, reason and the original cells (fix them there and import that file)."""
    found = import_progress(runtime().redis, job_id)
    path = rejects_file(runtime().settings.var_dir, job_id) if found and found["has_rejects"] else None
    if path is None:
        raise NotFound(f"import {job_id!r} has no rejected rows (or does not exist)", field="job_id")
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=f"{job_id}.rejects.csv")
