"""A call's conversation: run the flow on each of Twilio's requests and answer with TwiML.

Twilio waits for our answer on every step of a call, so this is the synchronous twin of
``bot.router``: the answer webhook starts the flow (a campaign's call, or an incoming
call on a number mapped to a flow), each ``<Gather>`` / ``<Record>`` callback resumes it
with the keys pressed (none: a re-prompt), and the status callback ends it when the voter
hangs up. Everything happens in the caller's database transaction; the ``Call`` row is
locked first, so two requests of one call take their turns, and the step counter makes a
repeated request get the document it already got.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import effects
from bot.consent import ConsentLedger
from bot.contacts import contact_for
from bot.db import utcnow
from bot.engine import Flow, inputs
from bot.engine.events import Event
from bot.flowhost import ActionBridge, FlowHost
from bot.flowlibrary import FlowLibrary
from bot.models import ConsentStatus, Contact, FlowSession, Sender
from bot.phones import PhoneParser
from bot.router import contact_view
from ivr import missedcalls, steplog, twiml
from ivr.fastpath import step_document
from ivr.links import CallLinks
from ivr.models import FINAL_CALL_STATUSES, Call, CallEvent, CallStep, VoiceLine, call_advances

log = logging.getLogger(__name__)
KEYS = frozenset("0123456789*#")


class CallRefused(Exception):
    """A request that names a call it may not act on (bad reference, another CallSid)."""


@dataclasses.dataclass(frozen=True)
class Answered:
    """What a voice request produced: the TwiML, and the call it belongs to (if any)."""

    twiml: str
    call: Call | None = None
    # Messages a missed call's flow queued: the caller sends them once the transaction commits.
    outbound: list[int] = dataclasses.field(default_factory=list)
    # Call-backs a missed call asked for: the caller queues them (ivr.tasks.call_back) after the commit.
    callbacks: list[int] = dataclasses.field(default_factory=list)


class CallDesk:
    """Runs calls' flows for one database session (one webhook request)."""

    def __init__(
        self,
        db: Session,
        *,
        links: CallLinks,
        region: str,
        actions: ActionBridge | None = None,
        audio: Callable[[str, str], str | None] | None = None,
        wanted: Callable[[Call], bool] | None = None,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.links = links
        self.region = region
        self.phones = PhoneParser(region)
        self.actions = actions
        self.audio = audio
        # Whether a call we placed is still wanted when it is answered (its campaign aborted: no).
        self.wanted = wanted
        self.now = now
        self.library = FlowLibrary(db)
        self._loaded: tuple[Any, ...] = ()

    # -- Twilio's requests ------------------------------------------------------------

    def answer(self, req: Any, call_id: int | None, signature: str | None) -> Answered:
        """The call was answered (ours) or is coming in (a voter calling one of our numbers)."""
        if call_id is None:
            return self._incoming(req)
        if not self.links.verify(call_id, 0, signature or ""):
            raise CallRefused(f"call {call_id}: the reference's signature does not match")
        call = self._locked(call_id, req.call_sid)
        if call.step > 0:
            return Answered(call.last_twiml or twiml.apology(), call)  # Twilio asked again
        call.sid = call.sid or req.call_sid
        self._answered(call, req.answered_by)
        if self.wanted is not None and not self.wanted(call):
            return self._finish(call, twiml.hangup())
        contact = self.db.get(Contact, call.contact_id)
        assert contact is not None
        if contact.consent == ConsentStatus.OPTED_OUT:
            return self._finish(call, twiml.said_then_hangup("opted_out", contact.language))
        if call.answered_by == "machine" and call.on_machine:
            message = call.machine_message if call.on_machine == "message" else None
            return self._finish(call, twiml.spoken_then_hangup(message) if message else twiml.hangup())
        return self._start(call, contact)

    def step(self, req: Any, call_id: int, step: int, signature: str) -> Answered:
        """The voter pressed keys (or nothing), or a recording finished: resume the flow."""
        if not self.links.verify(call_id, step, signature):
            raise CallRefused(f"call {call_id}: the reference's signature does not match")
        call = self._locked(call_id, req.call_sid)
        if step != call.step:
            return Answered(call.last_twiml or twiml.hangup(), call)  # a repeated request
        fs = self.db.get(FlowSession, call.session_id) if call.session_id else None
        if fs is None or fs.status == "ended":
            return self._finish(call, twiml.hangup())
        contact = self.db.get(Contact, call.contact_id)
        assert contact is not None
        # Keys only: Twilio reports a recording ended by hanging up as Digits=hangup.
        digits = req.digits if req.digits and set(req.digits) <= KEYS else ""
        if digits:
            steplog.heard(self.db, call, fs, digits, fs.state.get("node"), self.now())
        if call.opt_out_digit and digits == call.opt_out_digit and self._at_choice_question(fs):
            ConsentLedger(self.db).record(contact, "opted_out", source="keypad", channel="voice", note=digits)
            fs.status, fs.end_reason, fs.ended_at, fs.timeout_at = "ended", "opted_out", self.now(), None
            language = fs.state.get("language") or contact.language
            return self._finish(call, twiml.said_then_hangup("opted_out", language))
        waiting = fs.waiting_for
        received: inputs.Input
        if waiting == "record":
            received = inputs.Text(req.recording_url or "")
        elif waiting == "wait":
            received = inputs.Timeout()
        else:
            received = inputs.Digits(digits)
        answered = self._run(call, fs, contact, lambda host: host.send(received))
        if call.status in FINAL_CALL_STATUSES:
            # The recording of a call that has ended: saved, and the flow ends there.
            self._hung_up(call, recording_done=True)
            answered = Answered(twiml.hangup(), call)
        return answered

    def status(self, update: Any, call_id: int | None) -> Call | None:
        """A status callback: move the call forward, keep the callback, end a finished call's flow."""
        call = self._find(call_id, update.call_sid)
        if call is None:
            log.warning("call status %s for unknown call %s", update.status, update.call_sid)
            return None
        call.sid = call.sid or update.call_sid
        moved = call_advances(call.status, update.status)
        now = self.now()
        if moved:
            call.status = update.status
            if update.status == "ringing" and call.ringing_at is None:
                call.ringing_at = now
            elif update.status == "in-progress" and call.answered_at is None:
                call.answered_at = now
            elif update.status in ("completed", "busy", "no-answer", "failed", "canceled"):
                call.ended_at = now
                call.error_code = update.error_code or call.error_code
                self._hung_up(call)
        if update.answered_by and call.answered_by is None:
            call.answered_by = update.answered_by
        if update.duration_s is not None:
            call.duration_s = update.duration_s
        self.db.add(CallEvent(call_id=call.id, status=update.status, applied=moved, raw=dict(update.raw)))
        return call

    def finish(self, call_ids: list[int]) -> int:
        """Apply the ends the status webhook's fast path recorded (``ivr.quickstatus``); how many calls.

        Loading the calls does it (``_load_many``): their stored steps, then the end of their flows.
        """
        return len(self._load_many(Call.id.in_(call_ids)))

    # -- the steps --------------------------------------------------------------------

    def _incoming(self, req: Any) -> Answered:
        existing = self._load(Call.sid == req.call_sid)
        if existing is not None:
            return Answered(existing.last_twiml or twiml.hangup(), existing)
        if not req.from_phone:
            # A withheld number: nobody to remember answers for, nor to call back.
            return Answered(twiml.said_then_hangup("withheld", None))  # no number: no language known
        line = self.db.scalar(select(VoiceLine).where(VoiceLine.address == req.to))
        contact = self._contact(req.from_phone)
        sender_id = self.db.scalar(
            select(Sender.id).where(Sender.channel == "voice", Sender.address == req.to).order_by(Sender.id).limit(1)
        )
        call = Call(
            contact_id=contact.id,
            sender_id=sender_id,
            direction="inbound",
            sid=req.call_sid,
            status="in-progress",
            flow_name=line.flow_name if line else None,
            answered_by="human",
            answered_at=self.now(),
        )
        self.db.add(call)
        self.db.flush()
        if line is not None and line.missed_call:
            # Rejected (free for the voter); its flow starts by message, or as a call back.
            call.status, call.answered_by, call.answered_at, call.ended_at = "canceled", None, None, self.now()
            answered = self._finish(call, twiml.reject())
            return missedcalls.follow_up(
                self.db, answered, call, contact, line, region=self.region, actions=self.actions, now=self.now
            )
        if line is None or not line.flow_name:
            return self._finish(call, twiml.said_then_hangup("not_in_service", contact.language))
        return self._start(call, contact)

    def _start(self, call: Call, contact: Contact) -> Answered:
        found = self.library.get(call.flow_name or "", call.flow_version) if call.flow_name else None
        if found is None or "voice" not in found[0].channels:
            log.error("call %s: flow %r is missing or does not run on calls", call.id, call.flow_name)
            return self._finish(call, twiml.apology(contact.language))
        flow, version = found
        fs = FlowSession(
            contact_id=contact.id,
            flow_name=flow.name,
            flow_version=version,
            channel="voice",
            sender_id=call.sender_id,
            campaign_id=call.campaign_id,
            status="active",
            state={},
            started_at=self.now(),
        )
        self.db.add(fs)
        self.db.flush()
        call.session_id = fs.id
        start = lambda host: host.start(contact_view(contact), channel="voice")  # noqa: E731
        return self._run(call, fs, contact, start, flow, stored=True)

    def _run(
        self,
        call: Call,
        fs: FlowSession,
        contact: Contact,
        drive: Callable[[FlowHost], list[Event]],
        flow: Flow | None = None,
        *,
        stored: bool = False,
    ) -> Answered:
        """Run the flow one step and answer with its TwiML.

        ``stored``: a call's first step (the flow starts) is kept as a ``call_steps`` row,
        like the fast path's keypad steps, and applied with them (``ivr.steplog``), unless
        the flow ended at once or changed the contact.
        """
        if flow is None:
            found = self.library.get(fs.flow_name, fs.flow_version)
            if found is None:
                fs.status, fs.end_reason, fs.ended_at = "ended", "flow_missing", self.now()
                return self._finish(call, twiml.apology(contact.language))
            flow = found[0]
        host = FlowHost(flow, actions=self.actions, library=self.library.subflows(), clock=self._clock)
        if fs.state:
            host.attach(fs.state)
        events = drive(host)
        assert host.sprint is not None
        state = host.sprint.state
        if stored and state.get("status") != "ended" and not steplog.applies_at_once(events):
            return self._store(call, flow, events, state)
        effects.apply(self.db, fs, contact, flow, events, state, self.now())
        call.last_node = state.get("node") or call.last_node
        call.step += 1
        document = self._document(call.id, call.step, flow, events, state)
        call.last_twiml = document
        return Answered(document, call)

    def _document(self, call_id: int, step: int, flow: Flow, events: list[Event], state: dict[str, Any]) -> str:
        return step_document(self.links, self.audio, call_id, step, flow, events, state)

    def _store(self, call: Call, flow: Flow, events: list[Event], state: dict[str, Any]) -> Answered:
        """Keep the step as a row to apply later; the call's step counter moves when it is applied."""
        document = self._document(call.id, call.step + 1, flow, events, state)
        step = CallStep(call_id=call.id, step=call.step, events=[e.to_dict() for e in events], state=state)
        step.twiml, step.at = document, self.now()
        self.db.add(step)
        return Answered(document, call)

    def _finish(self, call: Call, document: str) -> Answered:
        call.step += 1
        call.last_twiml = document
        return Answered(document, call)

    def _hung_up(self, call: Call, *, recording_done: bool = False) -> None:
        """The call is over: a flow still running on it ends where the voter left.

        A voter who hangs up while recording leaves a recording: Twilio posts it to the
        ``<Record>`` action after the call ended, so that session waits for it (and ends
        once it is saved).
        """
        fs = self.db.get(FlowSession, call.session_id) if call.session_id else None
        if fs is None or fs.status == "ended" or (fs.waiting_for == "record" and not recording_done):
            return
        contact = self.db.get(Contact, call.contact_id)
        assert contact is not None
        self._run(call, fs, contact, lambda host: host.send(inputs.CallEnded()))

    def _at_choice_question(self, fs: FlowSession) -> bool:
        """True when the session waits at a question with choices (where the opt-out key is no answer).

        A number, a free pattern or a recording may well contain that key: there it is an answer.
        """
        name = fs.state.get("flow") or fs.flow_name
        found = self.library.get(fs.flow_name, fs.flow_version) if name == fs.flow_name else self.library.get(name)
        node = found[0].nodes.get(fs.state.get("node", "")) if found else None
        return fs.waiting_for == "ask" and bool(getattr(node, "choices", None))

    def _answered(self, call: Call, answered_by: str | None) -> None:
        now = self.now()
        if call_advances(call.status, "in-progress"):
            call.status = "in-progress"
        call.answered_at = call.answered_at or now
        call.answered_by = call.answered_by or answered_by

    def _locked(self, call_id: int, call_sid: str) -> Call:
        call = self._load(Call.id == call_id)
        if call is None:
            raise CallRefused(f"call {call_id} does not exist")
        if call.sid and call.sid != call_sid:
            raise CallRefused(f"call {call_id} is {call.sid}, not {call_sid}")
        return call

    def _find(self, call_id: int | None, call_sid: str) -> Call | None:
        if call_id is not None:
            call = self._load(Call.id == call_id)
            if call is not None and (call.sid is None or call.sid == call_sid):
                return call
        return self._load(Call.sid == call_sid)

    def _load(self, where: Any) -> Call | None:
        """The call, locked, read with its flow session and voter in one round trip, as the fast paths left it."""
        loaded = self._load_many(where)
        return loaded[0] if loaded else None

    def _load_many(self, where: Any) -> list[Call]:
        """The calls ``where`` selects, locked in id order, as the fast paths left them.

        The steps they stored are applied, and an end the status webhook recorded. Each
        call is read with its flow session and voter: the ``db.get`` calls that follow
        find them in the session's identity map instead of asking the database again.
        """
        rows = self.db.execute(
            select(Call, FlowSession, Contact, steplog.has_steps())
            .join(Contact, Contact.id == Call.contact_id)
            .outerjoin(FlowSession, FlowSession.id == Call.session_id)
            .where(where)
            .order_by(Call.id)
            .with_for_update(of=Call)
        ).all()
        # The identity map holds objects weakly: keep them alive for this request.
        self._loaded = tuple(rows)
        # Steps the fast path stored come first: this request sees the calls as they left them.
        steplog.settle_many(
            self.db, [(call, fs, contact) for call, fs, contact, stepped in rows if stepped], self.library
        )
        for call, *_ in rows:
            if call.settle_due_at is not None:
                # Then the end the status webhook recorded: the flow ends where the voter left.
                call.settle_due_at = None
                if call.status in FINAL_CALL_STATUSES:
                    self._hung_up(call)
        return [row[0] for row in rows]

    def _contact(self, phone: str) -> Contact:
        contact = contact_for(self.db, self.phones, phone)
        contact.last_seen_at = self.now()
        self.db.flush()
        return contact

    def _clock(self) -> str:
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
