"""The fast path of a call's keypad step: one read, the flow, one write.

Twilio waits for our TwiML on every key a voter presses, so a step must cost little. The
full path (``ivr.calls.CallDesk.step``) locks the call, loads three ORM objects, and
flushes an answer, a funnel step, the keys heard, the prompts spoken and the session's
new state before it answers: a dozen statements. Here a step is two:

1. one SELECT reads the call, its flow session and its newest stored step;
2. the flow runs (pure, in memory) and its TwiML is rendered;
3. one INSERT stores the outcome as a ``call_steps`` row (``ivr.models.CallStep``):
   the keys, the events, the new state and the document, in autocommit.

The rows are applied later, in order, with the call locked (``ivr.steplog.settle``):
when the call ends, when any other request of the call comes, or by the scheduler's
sweep. The database stays the truth throughout; nothing lives only in memory or Redis.

Races are settled by the database. The row's key is ``(call_id, step)``: two copies of
one request store one step, and the second answers with the first's document. The
INSERT takes its values from the call's row ``FOR KEY SHARE`` and only while the call
has not ended and has not moved past the step, so a step that races the call's final
status callback (which settles with the row locked ``FOR UPDATE``) waits for it, then
stores nothing and takes the full path.

Anything unusual takes the full path (``step`` returns None): no stored session, an
ended flow, a recording, the opt-out key, a request for an older step, a reference that
does not match. A step whose events change other rows (contact fields or tags, a
handoff) is stored, then settled at once.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, and_, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from bot.db import Database, UTCDateTime
from bot.engine import inputs
from bot.models import FlowSession
from ivr import steplog
from ivr.fastpath import FastPath
from ivr.models import FINAL_CALL_STATUSES, Call, CallStep

log = logging.getLogger(__name__)
KEYS = frozenset("0123456789*#")
_FINAL = sorted(FINAL_CALL_STATUSES)
_newest = aliased(CallStep)


class QuickSteps(FastPath):
    """Keypad steps on the fast path, for one process (made once, kept in ``Runtime.services``)."""

    def __init__(self, db: Database, **kwargs: Any) -> None:
        super().__init__(db, **kwargs)
        newest = select(func.max(_newest.step)).where(_newest.call_id == Call.id).scalar_subquery()
        self._read = (
            select(
                Call.sid,
                Call.step,
                Call.status,
                Call.session_id,
                Call.opt_out_digit,
                FlowSession.flow_name,
                FlowSession.flow_version,
                FlowSession.state,
                CallStep.step,
                CallStep.state,
                CallStep.twiml,
            )
            .outerjoin(FlowSession, FlowSession.id == Call.session_id)
            .outerjoin(CallStep, and_(CallStep.call_id == Call.id, CallStep.step == newest))
            .where(Call.id == bindparam("call_id"))
        )
        values = select(
            Call.id,
            bindparam("step", type_=Integer),
            bindparam("heard", type_=String),
            bindparam("node", type_=String),
            bindparam("events", type_=JSON),
            bindparam("state", type_=JSON),
            bindparam("twiml", type_=Text),
            bindparam("at", type_=UTCDateTime),
        ).where(
            Call.id == bindparam("call_id"),
            Call.status.not_in(_FINAL),
            Call.step <= bindparam("step", type_=Integer),
        )
        table = CallStep.__table__
        columns = ["call_id", "step", "heard", "node", "events", "state", "twiml", "at"]
        self._write = (
            insert(table)
            .from_select(columns, values.with_for_update(read=True, key_share=True))
            .returning(table.c.step)
        )

    def step(self, req: Any, call_id: int, step: int, signature: str) -> str | None:
        """The TwiML answering this step, or None: take the full path (``CallDesk.step``).

        The caller has checked Twilio's signature; this checks the step reference's.
        """
        if not self.links.verify(call_id, step, signature):
            return None  # the full path refuses it, with the reason in the log
        found = self.retrying(lambda conn: conn.execute(self._read, {"call_id": call_id}).first())
        if found is None:
            return None
        sid, at_step, status, session_id, opt_out, flow_name, flow_version, fs_state, stored, state, document = found
        if (sid and sid != req.call_sid) or status in FINAL_CALL_STATUSES or session_id is None:
            return None
        current = stored + 1 if stored is not None else at_step
        if step != current:
            # The newest stored step asked again (Twilio's retry): the same document.
            return document if stored is not None and step == stored else None
        if stored is None:
            state = fs_state
        if not state or state.get("status") == "ended":
            return None
        waiting = (state.get("waiting") or {}).get("kind")
        digits = req.digits if req.digits and set(req.digits) <= KEYS else ""
        if waiting == "record" or (opt_out and digits == opt_out):
            return None
        found_host = self.host(flow_name, flow_version)
        if found_host is None:
            return None
        host = found_host[0]
        host.attach(state)
        events = host.send(inputs.Timeout() if waiting == "wait" else inputs.Digits(digits))
        assert host.sprint is not None
        after = host.sprint.state
        answer = self.document(call_id, step + 1, host.flow, events, after)
        params = {
            "call_id": call_id,
            "step": step,
            "heard": digits or None,
            "node": state.get("node"),
            "events": [e.to_dict() for e in events],
            "state": after,
            "twiml": answer,
            "at": self.now(),
        }
        if not self._store(params):
            return self._stored_answer(call_id, step)
        if steplog.applies_at_once(events):
            self._settle_now(call_id)
        return answer

    def _store(self, params: dict[str, Any]) -> bool:
        """Insert the step's row; False when it was not stored (a copy was, or the call moved on)."""

        def write(conn: Any) -> bool:
            return conn.execute(self._write, params).first() is not None

        try:
            return self.retrying(write, begin=True)
        except IntegrityError:
            return False  # the same step, stored by a copy of this request

    def _stored_answer(self, call_id: int, step: int) -> str | None:
        """The document a copy of this request stored, or None (the full path decides)."""
        found = self.retrying(lambda conn: conn.execute(self._read, {"call_id": call_id}).first())
        if found is not None and found[8] == step:
            return str(found[10])
        return None

    def _settle_now(self, call_id: int) -> None:
        with self.db.session(write=True) as db:
            steplog.settle_call(db, call_id)
