"""Contact imports run by a worker: start one, follow its progress, find its rejects.

The console and the REST API store the uploaded file under ``var/imports/<job id>/``
(``upload_path``) and call ``start_import``; the job (``bot.tasks.import_contacts``)
reads the file from there — the web process never holds it in memory — and keeps its
progress in a Redis hash (``import_progress``): rows read, imported, updated, rejected,
written at most a few times a second, so that reporting costs the import nothing
measurable. The rejects file (line, reason, the original cells) lands next to the upload
(``rejects_file``). ``start_upload`` does the first two steps for a web request.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from bot.contact_import import TXT_LIMIT, ImportCounts, ImportReport
from bot.contacts import parse_tag

QUEUE = "default"
JOB_ID = re.compile(r"^import-[0-9a-f]{16}$")
SUFFIXES = (".csv", ".txt")
KEY = "canvass:import:{}"
RECENT = "canvass:imports"  # job ids by start time, newest last
KEEP_S = 7 * 24 * 3600  # progress is kept a week
FINAL = ("finished", "failed")
# A whole import is one transaction; an hour covers tens of millions of rows.
JOB_TIMEOUT_S = 3600
REPORT_EVERY_S = 0.25


class ImportRequestError(ValueError):
    """The import cannot start as asked; ``field`` names the culprit (file, tags)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def upload_path(var_dir: Path, filename: str) -> tuple[str, Path]:
    """A new job id and where its uploaded file goes (the folder is created).

    The file keeps its suffix, which tells a CSV from a TXT list.
    """
    suffix = Path(filename or "").suffix.lower()
    if suffix not in SUFFIXES:
        raise ImportRequestError("file", f"must be a .csv or .txt file, got {filename or 'nothing'!r}")
    job_id = f"import-{secrets.token_hex(8)}"
    folder = import_dir(var_dir, job_id)
    folder.mkdir(parents=True, exist_ok=True)
    return job_id, folder / f"upload{suffix}"


def import_dir(var_dir: Path, job_id: str) -> Path:
    """The folder of import ``job_id`` (its upload and its rejects)."""
    if not JOB_ID.match(job_id):
        raise ImportRequestError("job", f"not an import job id: {job_id!r}")
    return Path(var_dir) / "imports" / job_id


def rejects_path(upload: Path) -> Path:
    """Where the job writes the rejected rows of ``upload``."""
    return upload.with_name("rejects.csv")


def rejects_file(var_dir: Path, job_id: str) -> Path | None:
    """The rejected rows import ``job_id`` wrote, if it wrote any (None for a bad job id too)."""
    if not JOB_ID.match(job_id):
        return None
    path = import_dir(var_dir, job_id) / "rejects.csv"
    return path if path.is_file() else None


def start_upload(
    redis: Redis,
    var_dir: Path,
    upload_name: str,
    save: Callable[[Path], object],
    *,
    tags: list[str],
    filename: str,
    by: str | None = None,
) -> str:
    """Store an upload (``save`` writes it to the path it is given) and queue its import.

    ``upload_name`` is the name as sent (its suffix says CSV or TXT), ``filename`` the one
    to show. A refused upload (``ImportRequestError``) leaves nothing behind.
    """
    job_id, path = upload_path(var_dir, upload_name)
    save(path)
    try:
        return start_import(redis, job_id, path, tags=tags, filename=filename, by=by)
    except ImportRequestError:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
        raise


def start_import(
    redis: Redis, job_id: str, path: Path, *, tags: list[str], filename: str, by: str | None = None
) -> str:
    """Queue the import of ``path`` (stored by ``upload_path``) and return its job id.

    ``tags`` (``volunteer``, ``drive=nov``) go on every imported contact. Raises
    ``ImportRequestError`` for a bad tag, an empty file or a TXT list over 10 MB, before
    anything runs.
    """
    for tag in tags:
        try:
            parse_tag(tag)
        except ValueError as exc:
            raise ImportRequestError("tags", str(exc)) from None
    size = path.stat().st_size
    if size == 0:
        raise ImportRequestError("file", "is empty")
    if path.suffix == ".txt" and size > TXT_LIMIT:
        raise ImportRequestError(
            "file", f"a .txt list may be at most 10 MB, this one is {size / 1e6:.1f} MB; use a CSV"
        )
    now = time.time()
    key = KEY.format(job_id)
    pipe = redis.pipeline()
    pipe.hset(
        key,
        mapping={
            "state": "queued",
            "filename": filename,
            "bytes_total": size,
            "tags": ", ".join(tags),
            "by": by or "",
            "queued_at": now,
        },
    )
    pipe.expire(key, KEEP_S)
    pipe.zadd(RECENT, {job_id: now})
    pipe.zremrangebyscore(RECENT, 0, now - KEEP_S)
    pipe.execute()
    Queue(QUEUE, connection=redis).enqueue(
        "bot.tasks.import_contacts",
        str(path),
        tags,
        str(rejects_path(path)),
        job_id=job_id,
        job_timeout=JOB_TIMEOUT_S,
        result_ttl=KEEP_S,
        failure_ttl=KEEP_S,
    )
    return job_id


def import_progress(redis: Redis, job_id: str) -> dict[str, Any] | None:
    """Where import ``job_id`` is: state, rows read / imported / updated / rejected, percent.

    None when there is no such import (or it is older than a week). An import whose
    worker died without a word is reported failed: nothing of it was committed. A failed
    import is ``refused`` when the importer refused the file as a whole (no phone column,
    broken quoting): the file is at fault, not the worker.
    """
    raw = redis.hgetall(KEY.format(job_id)) if JOB_ID.match(job_id) else {}
    if not raw:
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}
    numbers = {k: int(float(data.get(k) or 0)) for k in ("bytes_total", "bytes_read", "rows", "imported", "updated")}
    state = data.get("state", "queued")
    if state not in FINAL and _job_lost(redis, job_id):
        state, data["error"] = "failed", "the worker stopped during the import; nothing was imported"
    total = numbers["bytes_total"] or 1
    percent = 100.0 if state == "finished" else min(99.9, 100.0 * numbers["bytes_read"] / total)
    return {
        "id": job_id,
        "state": state,
        "filename": data.get("filename", ""),
        "tags": data.get("tags", ""),
        "by": data.get("by", ""),
        "percent": round(percent, 1),
        **numbers,
        "rejected": int(data.get("rejected") or 0),
        "error": data.get("error") or None,
        "refused": state == "failed" and data.get("refused") == "1",
        "has_rejects": data.get("has_rejects") == "1",
        "seconds": float(data["seconds"]) if data.get("seconds") else None,
    }


def recent_imports(redis: Redis, limit: int = 10) -> list[dict[str, Any]]:
    """The newest imports' progress, newest first."""
    ids = [i.decode() for i in redis.zrevrange(RECENT, 0, limit - 1)]
    return [p for p in (import_progress(redis, i) for i in ids) if p is not None]


def _job_lost(redis: Redis, job_id: str) -> bool:
    try:
        status = Job.fetch(job_id, connection=redis).get_status(refresh=False)
    except NoSuchJobError:
        return True
    return status in ("failed", "stopped", "canceled")


class ProgressBoard:
    """The job's side: writes its progress into the import's hash, a few times a second."""

    def __init__(self, redis: Redis, job_id: str) -> None:
        self.redis = redis
        self.key = KEY.format(job_id)
        self.last = 0.0

    def running(self) -> None:
        """The worker took the job."""
        self._write({"state": "running", "started_at": time.time()})

    def counts(self, counts: ImportCounts) -> None:
        """Rows read so far (and the rows applied so far); skipped when one was written just now."""
        now = time.monotonic()
        if now - self.last < REPORT_EVERY_S:
            return
        self.last = now
        self._write(
            {
                "bytes_read": counts.bytes_read,
                "rows": counts.rows,
                "imported": counts.imported,
                "updated": counts.updated,
                "rejected": counts.rejected,
            }
        )

    def finished(self, report: ImportReport, size: int) -> None:
        """The import committed: the final counts."""
        self._write(
            {
                "state": "finished",
                "bytes_read": size,
                "rows": report.rows,
                "imported": report.imported,
                "updated": report.updated,
                "rejected": report.rejected,
                "has_rejects": 1 if report.rejects_path else 0,
                "seconds": round(report.seconds, 2),
                "finished_at": time.time(),
            }
        )

    def failed(self, message: str, *, refused: bool = False) -> None:
        """Nothing was imported, for this reason; ``refused``: the file itself cannot be imported."""
        self._write({"state": "failed", "error": message, "refused": int(refused), "finished_at": time.time()})

    def _write(self, fields: dict[str, Any]) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self.key, mapping=fields)
        pipe.expire(self.key, KEEP_S)
        pipe.execute()
