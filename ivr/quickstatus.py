"""The fast path of a call's final status callback: record the end, apply it later.

When a call ends, Twilio posts its final status. The full path (``CallDesk.status``)
locks the call, applies its stored keypad steps and ends its flow (the engine's
``CallEnded``: the hang-up point, the session's end, the funnel) before it answers:
the most expensive request of a call. Nobody waits on that work — the caller has hung
up — so here the request only records the end, in one transaction of two statements:

1. an UPDATE of the call, guarded by a sub-select that locks it ``FOR UPDATE`` (a keypad
   step racing the end waits for it, then finds the call ended and takes the full
   path): status, ``ended_at``, duration, who answered, error code, and
   ``settle_due_at``, which marks the call for ``ivr.calls.finish_ended``;
2. an INSERT of the callback into ``call_events``.

The scheduler's ``call-ends`` task then applies the stored steps and ends the flow,
many calls a round, within about a second. The full path keeps everything else: a
status that does not end the call, a call of a campaign (its recipient follows the call
at once: a retry is planned, the campaign's progress moves), a call already ended (a
repeated callback), a CallSid that does not match the reference.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from bot.db import Database, UTCDateTime
from ivr.fastpath import FastPath
from ivr.models import FINAL_CALL_STATUSES, Call, CallEvent

_FINAL = sorted(FINAL_CALL_STATUSES)


class QuickStatus(FastPath):
    """Final status callbacks of calls outside campaigns, on the fast path, for one process."""

    def __init__(self, db: Database, **kwargs: Any) -> None:
        super().__init__(db, **kwargs)
        # By our reference (a call we placed), or by Twilio's CallSid (a number's own callback).
        self._by_id = self._statement(
            Call.id == bindparam("call_id"), Call.sid.is_(None) | (Call.sid == bindparam("sid"))
        )
        self._by_sid = self._statement(Call.sid == bindparam("sid"))
        self._event = insert(CallEvent)

    @staticmethod
    def _statement(*where: Any) -> Any:
        target = select(Call.id).where(*where, Call.status.not_in(_FINAL), Call.campaign_id.is_(None)).with_for_update()
        now = bindparam("now", type_=UTCDateTime)
        return (
            update(Call)
            .where(Call.id.in_(target.scalar_subquery()))
            .values(
                status=bindparam("status"),
                ended_at=now,
                settle_due_at=now,
                sid=func.coalesce(Call.sid, bindparam("sid")),
                error_code=func.coalesce(bindparam("error_code"), Call.error_code),
                answered_by=func.coalesce(Call.answered_by, bindparam("answered_by")),
                duration_s=func.coalesce(bindparam("duration_s"), Call.duration_s),
            )
            .returning(Call.id)
        )

    def apply(self, update_: Any, call_id: int | None) -> bool:
        """True when the call's end was recorded here; False: the full path (``CallDesk.status``) takes it.

        The caller has checked Twilio's signature.
        """
        if update_.status not in FINAL_CALL_STATUSES or not update_.call_sid:
            return False
        statement = self._by_id if call_id is not None else self._by_sid
        params = {
            "call_id": call_id,
            "sid": update_.call_sid,
            "status": update_.status,
            "now": self.now(),
            "error_code": update_.error_code or None,
            "answered_by": update_.answered_by or None,
            "duration_s": update_.duration_s,
        }

        def write(conn: Any) -> bool:
            found = conn.execute(statement, params).first()
            if found is None:
                return False  # nothing was changed: the full path decides
            event = {"call_id": found[0], "status": update_.status, "applied": True, "raw": dict(update_.raw)}
            conn.execute(self._event, {**event, "received_at": params["now"]})
            return True

        return bool(self.retrying(write, atomic=True))
