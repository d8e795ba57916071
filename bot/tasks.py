"""RQ jobs of the conversation core. Jobs take plain values, and are thin and idempotent."""

from __future__ import annotations

import datetime
import logging
import os

from rq import get_current_job

from bot import conversations, outbox, runtime
from bot.contact_import import import_file
from bot.contacts import parse_tag

log = logging.getLogger(__name__)


def import_contacts(path: str, tags: list[str], rejects_path: str | None = None) -> dict[str, object]:
    """Import a contacts file in the background, reporting progress in the job's meta.

    Running it twice is harmless: the import upserts on phone number, so the second
    run counts every row as updated.
    """
    rt = runtime.current()
    job = get_current_job()
    total = max(os.path.getsize(path), 1)

    def progress(done: int) -> None:
        if job is not None:
            job.meta["progress"] = round(done / total, 3)
            job.save_meta()

    report = import_file(
        rt.db,
        path,
        region=rt.settings.default_region,
        tags=[parse_tag(t) for t in tags],
        rejects_path=rejects_path,
        progress=progress,
    )
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


def drain_inbound() -> int:
    """Route the messages the webhook stored (job id ``inbound-drain-<why>``).

    Any number of these may run, at once or twice over: each message is claimed in the
    database, so it is routed once.
    """
    routed = conversations.drain_inbound(runtime.current())
    log.info("drain: %d inbound message(s) routed", routed)
    return routed
