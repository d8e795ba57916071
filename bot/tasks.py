"""RQ jobs of the conversation core. Jobs take plain values, and are thin and idempotent."""

from __future__ import annotations

import collections
import datetime
import logging
import os
from pathlib import Path

from rq import get_current_job

from bot import conversations, outbox, runtime
from bot.contact_import import ImportFileError, import_file
from bot.contacts import parse_tag
from bot.import_jobs import KEY, ProgressBoard

log = logging.getLogger(__name__)
SMALL_FILE = 1024 * 1024


def import_contacts(path: str, tags: list[str], rejects_path: str | None = None) -> dict[str, object]:
    """Import a contacts file in the background (job id ``import-<hex>``, see ``bot.import_jobs``).

    Progress goes to the job's meta (a fraction of the file read) and to the import's
    Redis hash (rows read / imported / updated / rejected) that the console polls.
    Running it twice is harmless: the import upserts on phone number, so the second
    run counts every row as updated. A file that cannot be imported at all is reported
    (state ``failed`` with the reason, naming the file as uploaded), not raised.
    """
    rt = runtime.current()
    job = get_current_job()
    size = os.path.getsize(path)
    total = max(size, 1)
    board = ProgressBoard(rt.redis, job.id) if job is not None else None
    filename = (rt.redis.hget(KEY.format(job.id), "filename") or b"").decode() if job is not None else ""

    def progress(done: int) -> None:
        if job is not None:
            job.meta["progress"] = round(done / total, 3)
            job.save_meta()

    if board is not None:
        board.running()
    try:
        report = import_file(
            rt.db,
            path,
            region=rt.settings.default_region,
            tags=[parse_tag(t) for t in tags],
            rejects_path=rejects_path,
            progress=progress,
            on_counts=board.counts if board is not None else None,
            # A small file is parsed here: starting worker processes would take longer.
            workers=1 if size < SMALL_FILE else None,
        )
    except ImportFileError as exc:
        message = str(exc).replace(path, filename or Path(path).name)
        if board is not None:
            board.failed(message, refused=True)
        log.warning("import %s failed: %s", path, message)
        return {"error": message}
    except BaseException as exc:
        if board is not None:
            board.failed(f"the import stopped ({type(exc).__name__}); nothing was imported")
        raise
    if board is not None:
        board.finished(report, size)
    log.info("imported %s: %d new, %d updated, %d rejected", path, report.imported, report.updated, report.rejected)
    return {
        "imported": report.imported,
        "updated": report.updated,
        "rejected": report.rejected,
        "rejects_path": str(report.rejects_path) if report.rejects_path else None,
    }


def send_message(message_id: int) -> str:
    """Send one queued message (job id ``send-<id>``); running it twice sends once."""
    rt = runtime.current()
    result = outbox.send_message(rt.db, rt.settings, message_id)
    if result.startswith("retry later"):
        # Back off and try again; the row is pending again, so only this job will claim it.
        from rq import Queue

        Queue("high", connection=rt.redis).enqueue_in(
            datetime.timedelta(seconds=5), "bot.tasks.send_message", message_id
        )
    log.info("send %s: %s", message_id, result)
    return result


def send_messages(message_ids: list[int]) -> dict[str, str]:
    """Send several queued messages (job id ``send-<first id>-<count>``); running it twice sends each once.

    The messages a rate limit or a server error held back go in a new job 5 s later.
    """
    rt = runtime.current()
    results = outbox.send_messages(rt.db, rt.settings, message_ids)
    again = [mid for mid, result in results.items() if result.startswith("retry later")]
    if again:
        from rq import Queue

        Queue("high", connection=rt.redis).enqueue_in(datetime.timedelta(seconds=5), "bot.tasks.send_messages", again)
    log.info(
        "send %d message(s): %s", len(results), dict(collections.Counter(r.split(" ")[0] for r in results.values()))
    )
    return {str(mid): result for mid, result in results.items()}


def drain_inbound() -> int:
    """Route the messages the webhook stored (job id ``inbound-drain-<why>``).

    Any number of these may run, at once or twice over: each message is claimed in the
    database, so it is routed once.
    """
    routed = conversations.drain_inbound(runtime.current())
    log.info("drain: %d inbound message(s) routed", routed)
    return routed
