"""Calls whose final status never came: asked of the provider, or closed, by the scheduler.

Twilio does not post a status callback again when our webhook failed to take it, and a
call can be lost with a process. A call still ``queued`` or ``ringing`` well after its
ring timeout, or ``in-progress`` for longer than any call may last, is asked about
(``VoiceProvider.fetch``) and moved on with what the provider says, exactly as its
callback would have. A provider that cannot say (the sandbox) has the call end as
``no-answer`` (never answered) or ``completed`` (answered). A call campaign's recipient then
follows (a retry, or its failure), its live-call slot is freed, and the campaign can
complete.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from bot.channels import SendError
from bot.models import Sender
from bot.outbox import NoProvider
from bot.runtime import Runtime
from campaigns import call_tracking
from ivr import placing
from ivr.calls import CallDesk
from ivr.links import CallLinks
from ivr.models import Call
from ivr.providers import CallStatusUpdate

log = logging.getLogger(__name__)
# Ring timeouts are at most 10 minutes; a call still unanswered after this lost its callbacks.
STALE_RINGING = dt.timedelta(minutes=15)
# Twilio ends every call after 4 hours at the latest.
LONGEST_CALL = dt.timedelta(hours=4, minutes=5)
PER_RUN = 200


def sweep(rt: Runtime, now: dt.datetime) -> int:
    """Settle calls whose final status is overdue; return how many moved."""
    with rt.db.session() as db:
        rows = db.execute(
            select(Call.id, Call.sid, Call.status, Call.answered_at, Sender)
            .join(Sender, Sender.id == Call.sender_id)
            .where(Call.sid.is_not(None), Call.status.in_(("queued", "ringing", "in-progress")))
            .where(Call.created_at < now - STALE_RINGING)
            .order_by(Call.id)
            .limit(PER_RUN)
        ).all()
        db.expunge_all()
    moved = 0
    for call_id, sid, status, answered_at, sender in rows:
        try:
            update = placing.provider_for(rt.settings, sender).fetch(sid)
        except (SendError, NoProvider) as exc:
            log.warning("call %s (%s): its status could not be asked (%s); left for the next run", call_id, sid, exc)
            continue
        if update is None or not update.final:
            if status in ("queued", "ringing") and update is None:
                update = CallStatusUpdate(call_sid=sid, status="completed" if answered_at else "no-answer")
            elif status == "in-progress" and answered_at is not None and answered_at < now - LONGEST_CALL:
                update = CallStatusUpdate(call_sid=sid, status="completed")
            else:
                continue  # live as far as the provider knows
        with rt.db.session(write=True) as db:
            desk = CallDesk(
                db,
                links=CallLinks.of(rt.settings),
                region=rt.settings.default_region,
            )
            call = desk.status(update, call_id)
            followed = call_tracking.follow(db, call) if call is not None else None
        call_tracking.after_commit(rt, followed)
        log.warning("call %s (%s): no final status came; settled as %s", call_id, sid, update.status)
        moved += 1
    return moved
