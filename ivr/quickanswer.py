"""The fast path of an incoming call's answer: one read, the flow's start, one transaction.

A voter calling one of our numbers is answered by the line's flow. The full path
(``ivr.calls.CallDesk._incoming``) finds the call, the line, the sender and the contact
through the ORM, then flushes a contact, a call and a flow session before the flow
starts: about ten statements. Here:

1. one SELECT reads the line's flow, its voice sender, the caller's contact (if any)
   and whether the CallSid is known already; a known contact's tags in a second one;
2. the flow starts (pure, in memory) — before anything is written, so a request that
   goes to the full path after this has stored nothing;
3. one transaction inserts the contact (a new number) or marks it seen, the flow
   session, the call and the start's ``call_steps`` row (step 0, as
   ``CallDesk._store`` keeps it), then the TwiML is returned.

The rows are applied to the flow (answers, funnel, the session's state) with the call's
keypad steps (``ivr.steplog``). Anything unusual takes the full path (``answer``
returns None): a withheld or unreadable number, a missed-call line or one without a
flow, a CallSid seen before (Twilio asking again), a flow that is missing or not a
voice flow. A start whose events change other rows or end the flow at once is stored,
then applied at once, like such a keypad step. Two copies of one request race on the
call's unique SID: the loser's transaction rolls back and the full path answers it with
the winner's document.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import bindparam, exists, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from bot.db import Database
from bot.models import Contact, ContactTag, FlowSession, Sender
from bot.phones import InvalidPhone, PhoneParser
from ivr import steplog
from ivr.fastpath import FastPath
from ivr.models import Call, CallStep, VoiceLine

log = logging.getLogger(__name__)


class QuickAnswers(FastPath):
    """Answers of incoming calls on the fast path, for one process."""

    def __init__(self, db: Database, *, region: str, **kwargs: Any) -> None:
        super().__init__(db, **kwargs)
        self.phones = PhoneParser(region)
        to, phone = bindparam("to"), bindparam("phone")
        line = select(VoiceLine).where(VoiceLine.address == to).subquery()
        contact = select(Contact).where(Contact.phone == phone).subquery()
        sender = (
            select(Sender.id)
            .where(Sender.channel == "voice", Sender.address == to)
            .order_by(Sender.id)
            .limit(1)
            .scalar_subquery()
        )
        # One row whatever exists: the line and the contact are outer-joined to a constant.
        self._read = (
            select(
                line.c.flow_name,
                line.c.missed_call,
                sender,
                contact.c.id,
                contact.c.name,
                contact.c.language,
                contact.c.fields,
                exists().where(Call.sid == bindparam("sid")),
            )
            .select_from(select(literal(1).label("one")).subquery().alias("one"))
            .outerjoin(line, literal(True))
            .outerjoin(contact, literal(True))
        )
        self._tags = select(ContactTag.name, ContactTag.value).where(ContactTag.contact_id == bindparam("contact_id"))
        self._new_contact = insert(Contact).returning(Contact.id)
        self._seen = update(Contact).where(Contact.id == bindparam("contact_id"))
        self._session = insert(FlowSession).returning(FlowSession.id)
        self._call = insert(Call).returning(Call.id)
        self._step = insert(CallStep)

    def answer(self, req: Any) -> str | None:
        """The TwiML answering an incoming call, or None: take the full path (``CallDesk.answer``).

        The caller has checked Twilio's signature.
        """
        if not req.from_phone:
            return None
        try:
            phone = self.phones.parse(req.from_phone)
        except InvalidPhone:
            return None
        params = {"to": req.to, "phone": phone.e164, "sid": req.call_sid}
        found = self.retrying(lambda conn: conn.execute(self._read, params).first())
        flow_name, missed_call, sender_id, contact_id, name, language, fields, known = found
        if known or not flow_name or missed_call:
            return None
        hosted = self.host(flow_name, None)
        if hosted is None:
            return None
        host, version = hosted
        tags: dict[str, str | None] = {}
        if contact_id is not None:
            rows = self.retrying(lambda conn: conn.execute(self._tags, {"contact_id": contact_id}).all())
            tags = dict(rows)
        view = {"name": name, "phone": phone.e164, "language": language, "fields": dict(fields or {}), "tags": tags}
        events = host.start(view, channel="voice")
        assert host.sprint is not None
        state = host.sprint.state
        now = self.now()

        def write(conn: Any) -> tuple[int, str]:
            nonlocal contact_id
            if contact_id is None:
                new = {"phone": phone.e164, "phone_kind": phone.kind, "timezone": phone.timezone, "fields": {}}
                contact_id = conn.execute(self._new_contact, {**new, "last_seen_at": now}).scalar_one()
            else:
                conn.execute(self._seen, {"contact_id": contact_id, "last_seen_at": now})
            session_id = conn.execute(
                self._session,
                {
                    "contact_id": contact_id,
                    "flow_name": flow_name,
                    "flow_version": version,
                    "channel": "voice",
                    "sender_id": sender_id,
                    "status": "active",
                    "state": {},
                    "started_at": now,
                },
            ).scalar_one()
            call_id = conn.execute(
                self._call,
                {
                    "contact_id": contact_id,
                    "sender_id": sender_id,
                    "session_id": session_id,
                    "direction": "inbound",
                    "sid": req.call_sid,
                    "status": "in-progress",
                    "flow_name": flow_name,
                    "answered_by": "human",
                    "answered_at": now,
                    "created_at": now,
                },
            ).scalar_one()
            document = self.document(call_id, 1, host.flow, events, state)
            step = {"call_id": call_id, "step": 0, "events": [e.to_dict() for e in events], "state": state}
            conn.execute(self._step, {**step, "twiml": document, "at": now})
            return call_id, document

        try:
            call_id, document = self.retrying(write, atomic=True)
        except IntegrityError:
            return None  # a copy of this request (or a new contact's) won the race: the full path answers
        if state.get("status") == "ended" or steplog.applies_at_once(events):
            with self.db.session(write=True) as db:
                steplog.settle_call(db, call_id)
        return document
