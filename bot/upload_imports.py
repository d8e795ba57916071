"""Contacts files uploaded for import (the REST API): kept under ``var/``, imported by a worker.

``start_import`` saves the upload and queues the import job (``bot.tasks.import_contacts``,
the one ``canvass worker`` runs for every background import); ``import_progress`` reads
the job back: queued, started (with the share of the file read), finished (with the
report) or failed (with the reason). A file the importer refuses as a whole (no phone
column, broken quoting, empty) is a finished job with an ``error`` and nothing imported.

The console's import page is getting a job module of its own (``bot.import_jobs``, with
``start_import`` and ``import_progress`` too); when it lands, the API's thin layer
(``web.api.contacts_import``) can take it instead of this one.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path
from typing import IO, Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from bot.contact_import import ImportFileError
from bot.runtime import Runtime
from bot.tasks import import_contacts

JOB_ID = re.compile(r"^import-[0-9a-f]{32}$")
MAX_UPLOAD = 512 * 1024 * 1024
KEEP_S = 7 * 24 * 3600  # how long a finished job's report stays readable


class UploadError(ValueError):
    """The upload is refused before anything is queued; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where an import job is."""

    job_id: str
    state: str  # queued, started, finished, failed
    progress: float  # share of the file read, 0 to 1
    report: dict[str, Any] | None  # imported, updated, rejected, encoding; or error
    error: str | None


def rejects_file(rt: Runtime, job_id: str) -> Path | None:
    """The rejected rows of a finished import (line, reason, cells), when it had any."""
    if not JOB_ID.match(job_id):
        return None
    path = folder(rt) / f"{job_id}.rejects.csv"
    return path if path.is_file() else None


def folder(rt: Runtime) -> Path:
    """Where uploads and their rejects files are kept."""
    return rt.settings.var_dir / "imports"


def start_import(rt: Runtime, upload: IO[bytes], filename: str, tags: list[str]) -> str:
    """Save an uploaded CSV or TXT file and queue its import; return the job id."""
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".txt"):
        raise UploadError("file", f"must be a .csv or .txt file, got {filename!r}")
    job_id = f"import-{uuid.uuid4().hex}"
    where = folder(rt)
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{job_id}{suffix}"
    size = 0
    with path.open("wb") as out:
        while chunk := upload.read(1024 * 1024):
            size += len(chunk)
            if size > MAX_UPLOAD:
                out.close()
                path.unlink(missing_ok=True)
                raise UploadError("file", f"is over {MAX_UPLOAD // (1024 * 1024)} MB; split it")
            out.write(chunk)
    if size == 0:
        path.unlink(missing_ok=True)
        raise UploadError("file", "is empty")
    Queue("default", connection=rt.redis).enqueue(
        run_upload,
        str(path),
        tags,
        str(where / f"{job_id}.rejects.csv"),
        job_id=job_id,
        result_ttl=KEEP_S,
        failure_ttl=KEEP_S,
        job_timeout=6 * 3600,
    )
    return job_id


def run_upload(path: str, tags: list[str], rejects_path: str) -> dict[str, object]:
    """The job: import the saved file; a file refused as a whole is a report with ``error``."""
    try:
        return import_contacts(path, tags, rejects_path)
    except ImportFileError as exc:
        # The saved file's name is ours (the job id), not the caller's: say what is wrong only.
        return {"error": str(exc).replace(f"{path}", "the file").removeprefix("the file: ")}


def import_progress(conn: redis.Redis, job_id: str) -> Progress | None:
    """The job's state, progress and report; None when there is no such import."""
    if not JOB_ID.match(job_id):
        return None
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return None
    status = job.get_status(refresh=False)
    state = {"finished": "finished", "failed": "failed", "started": "started"}.get(
        getattr(status, "value", ""), "queued"
    )
    report = job.return_value() if state == "finished" else None
    done = 1.0 if state == "finished" else float(job.meta.get("progress", 0.0))
    error = None
    if state == "failed":
        result = job.latest_result()
        last = (result.exc_string or "").strip().splitlines()[-1:] if result else []
        error = last[0] if last else "the import failed"
    elif report and report.get("error"):
        error = str(report["error"])
    return Progress(job_id, state, done, report, error)
