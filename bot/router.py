"""Where a voter's message goes: consent keywords first, then the conversation.

Under a per-contact lock: store the message (a number never seen before becomes a
contact); STOP-like words opt the voter out at once (one confirmation, nothing else);
START-like words opt back in; HELP answers. Otherwise: an open handoff case keeps the bot
quiet; else the voter's waiting session is resumed; else a flow whose keyword is the
message's first word starts; else the default flow, if one is declared.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import effects
from bot.channels.base import Inbound
from bot.consent import ConsentLedger
from bot.contacts import contact_for
from bot.db import utcnow
from bot.engine import Flow, inputs
from bot.flowhost import ActionBridge, FlowHost
from bot.flowlibrary import FlowLibrary
from bot.keywords import Keyword, classify
from bot.models import ConsentStatus, Contact, FlowSession, HandoffCase, Message, Sender
from bot.phones import PhoneParser

OPT_OUT_REPLY = "You are unsubscribed and will get no more messages from us. Reply START to subscribe again."
OPT_IN_REPLY = "You are subscribed again. Reply STOP at any time to unsubscribe."
HELP_REPLY = "This is your election office's helpline. Reply STOP to unsubscribe, START to subscribe again."


@dataclasses.dataclass
class Routed:
    """What happened to an inbound message."""

    message_id: int
    outcome: str  # duplicate, opted_out, opted_in, help, ignored_opted_out, handoff, resumed, started, stored
    outbound: list[int] = dataclasses.field(default_factory=list)
    session_id: int | None = None
    # The outbound messages themselves (the same rows as ``outbound``), for the caller to show.
    messages: list[Message] = dataclasses.field(default_factory=list)


class Router:
    """Routes inbound messages for one database session (one request or job)."""

    def __init__(
        self,
        db: Session,
        *,
        region: str,
        actions: ActionBridge | None = None,
        lock: Callable[[str], contextlib.AbstractContextManager[Any]] | None = None,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.phones = PhoneParser(region)
        self.actions = actions
        self.lock = lock or (lambda _key: contextlib.nullcontext())
        self.now = now
        self.library = FlowLibrary(db)

    def receive(self, inbound: Inbound, sender: Sender, *, received_at: dt.datetime | None = None) -> Routed:
        """Store and route one inbound message; the caller commits and queues ``outbound``.

        ``received_at`` is when the message reached us (it may have waited in the
        inbound queue); the stored message carries it.
        """
        phone = self.phones.parse(inbound.from_phone).e164
        with self.lock(contact_lock_key(phone)):
            existing = self.db.scalar(select(Message.id).where(Message.provider_id == inbound.provider_id))
            if existing is not None:
                return Routed(existing, "duplicate")
            contact = self._contact(phone, inbound)
            message = Message(
                contact_id=contact.id,
                sender_id=sender.id,
                direction="in",
                purpose="flow",
                channel=inbound.channel,
                body=inbound.text,
                media=[{"url": u, "type": t} for u, t in inbound.media],
                status="received",
                provider_id=inbound.provider_id,
                created_at=received_at or self.now(),
            )
            self.db.add(message)
            self.db.flush()
            routed = self._route(contact, message, inbound, sender)
            routed.message_id = message.id
            return routed

    def fire_timeout(self, fs: FlowSession) -> Routed:
        """A question's timeout or a wait's timer ran out: resume the session with a timeout."""
        contact = self.db.get(Contact, fs.contact_id)
        assert contact is not None
        with self.lock(contact_lock_key(contact.phone)):
            self.db.refresh(fs)
            if fs.status != "waiting" or fs.timeout_at is None or fs.timeout_at > self.now():
                return Routed(0, "not_due", session_id=fs.id)  # answered meanwhile, or handled by another process
            if contact.consent == ConsentStatus.OPTED_OUT:
                fs.status, fs.end_reason, fs.ended_at, fs.timeout_at = "ended", "opted_out", self.now(), None
                return Routed(0, "ignored_opted_out", session_id=fs.id)
            found = self.library.get(fs.flow_name, fs.flow_version)
            if found is None:
                fs.status, fs.end_reason, fs.ended_at, fs.timeout_at = "ended", "flow_missing", self.now(), None
                return Routed(0, "stored", session_id=fs.id)
            flow, _ = found
            host = self._host(flow)
            host.attach(fs.state)
            events = host.send(inputs.Timeout())
            return self._store(fs, contact, flow, events, host, "timed_out")

    def _contact(self, phone: str, inbound: Inbound) -> Contact:
        contact = contact_for(self.db, self.phones, phone, name=inbound.profile_name)
        contact.last_seen_at = self.now()
        self.db.flush()
        return contact

    def _route(self, contact: Contact, message: Message, inbound: Inbound, sender: Sender) -> Routed:
        keyword = classify(inbound.text)
        ledger = ConsentLedger(self.db)
        if keyword is Keyword.OPT_OUT:
            if contact.consent != ConsentStatus.OPTED_OUT:
                ledger.record(contact, "opted_out", source="keyword", channel=inbound.channel, note=inbound.text[:100])
                self._end_sessions(contact, "opted_out")
                return self._confirm(contact, sender, inbound.channel, OPT_OUT_REPLY, "opted_out")
            return Routed(0, "opted_out")  # already out: exactly one confirmation was sent before
        if keyword is Keyword.OPT_IN and contact.consent == ConsentStatus.OPTED_OUT:
            ledger.record(contact, "opted_in", source="keyword", channel=inbound.channel, note=inbound.text[:100])
            return self._confirm(contact, sender, inbound.channel, OPT_IN_REPLY, "opted_in")
        # A subscribed voter's "YES" or "START" is an ordinary message (it may answer a question).
        if keyword is Keyword.HELP:
            return self._confirm(contact, sender, inbound.channel, HELP_REPLY, "help")
        if contact.consent == ConsentStatus.OPTED_OUT:
            return Routed(0, "ignored_opted_out")
        if self.db.scalar(
            select(HandoffCase.id).where(HandoffCase.contact_id == contact.id, HandoffCase.status == "open")
        ):
            return Routed(0, "handoff")
        received = inputs.Text(inbound.button_payload or inbound.text)
        waiting = self._waiting_session(contact, inbound.channel)
        if waiting is not None:
            return self._resume(waiting, contact, message, received)
        found = self.library.triggered_by(inbound.text, inbound.channel) or self.library.default()
        if found is None:
            return Routed(0, "stored")
        return self._start(found, contact, message, sender, inbound.channel)

    def _waiting_session(self, contact: Contact, channel: str) -> FlowSession | None:
        stmt = (
            select(FlowSession)
            .where(
                FlowSession.contact_id == contact.id, FlowSession.status == "waiting", FlowSession.channel == channel
            )
            .order_by(FlowSession.id.desc())
            .limit(1)
        )
        session = self.db.scalar(stmt)
        if session is not None and session.expires_at is not None and session.expires_at <= self.now():
            session.status, session.end_reason, session.ended_at = "ended", "expired", self.now()
            return None
        return session

    def _host(self, flow: Flow) -> FlowHost:
        return FlowHost(flow, actions=self.actions, library=self.library.subflows(), clock=self._clock)

    def _clock(self) -> str:
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def _resume(self, fs: FlowSession, contact: Contact, message: Message, received: inputs.Input) -> Routed:
        # The session runs on the version it started with (a subflow it is in is found by name).
        found = self.library.get(fs.flow_name, fs.flow_version)
        if found is None:
            fs.status, fs.end_reason, fs.ended_at = "ended", "flow_missing", self.now()
            return Routed(0, "stored")
        flow, _ = found
        host = self._host(flow)
        host.attach(fs.state)
        events = host.send(received)
        message.session_id = fs.id
        if fs.replied_at is None:
            fs.replied_at = self.now()  # a campaign's "replied_at": the voter's first answer
        return self._store(fs, contact, flow, events, host, "resumed")

    def start_flow(self, found: tuple[Flow, int], contact: Contact, sender: Sender, channel: str) -> Routed:
        """Start a flow for a voter who sent nothing (a missed call, say); the caller queues ``outbound``."""
        with self.lock(contact_lock_key(contact.phone)):
            if contact.consent == ConsentStatus.OPTED_OUT:
                return Routed(0, "ignored_opted_out")
            return self._start(found, contact, None, sender, channel)

    def _start(
        self, found: tuple[Flow, int], contact: Contact, message: Message | None, sender: Sender, channel: str
    ) -> Routed:
        flow, version = found
        if channel not in flow.channels:
            return Routed(0, "stored")
        fs = FlowSession(
            contact_id=contact.id,
            flow_name=flow.name,
            flow_version=version,
            channel=channel,
            sender_id=sender.id,
            status="active",
            state={},
            started_at=self.now(),
        )
        self.db.add(fs)
        self.db.flush()
        if message is not None:
            message.session_id = fs.id
        host = self._host(flow)
        events = host.start(contact_view(contact), channel=channel)
        return self._store(fs, contact, flow, events, host, "started")

    def _store(
        self, fs: FlowSession, contact: Contact, flow: Flow, events: list[Any], host: FlowHost, outcome: str
    ) -> Routed:
        assert host.sprint is not None
        outbound = effects.apply(self.db, fs, contact, flow, events, host.sprint.state, self.now())
        return Routed(0, outcome, [m.id for m in outbound], fs.id, messages=outbound)

    def _confirm(self, contact: Contact, sender: Sender, channel: str, text: str, outcome: str) -> Routed:
        message = self._system(contact, sender, channel, text)
        return Routed(0, outcome, [message.id], messages=[message])

    def _system(self, contact: Contact, sender: Sender, channel: str, text: str) -> Message:
        message = Message(
            contact_id=contact.id,
            sender_id=sender.id,
            direction="out",
            purpose="consent",
            channel=channel,
            body=text,
            status="pending",
            created_at=self.now(),
        )
        self.db.add(message)
        self.db.flush()
        return message

    def _end_sessions(self, contact: Contact, reason: str) -> None:
        for fs in self.db.scalars(
            select(FlowSession).where(FlowSession.contact_id == contact.id, FlowSession.status != "ended")
        ):
            fs.status, fs.end_reason, fs.ended_at, fs.timeout_at = "ended", reason, self.now(), None


def contact_view(contact: Contact) -> dict[str, Any]:
    """What a flow sees of a contact (its state keeps a copy)."""
    return view_of(
        contact.name, contact.phone, contact.language, contact.fields, {t.name: t.value for t in contact.tags}
    )


def view_of(
    name: str | None, phone: str, language: str | None, fields: Mapping[str, Any] | None, tags: Mapping[str, Any]
) -> dict[str, Any]:
    """``contact_view`` from a contact's columns and its tags (name -> value, by name)."""
    return {"name": name, "phone": phone, "language": language, "fields": dict(fields or {}), "tags": dict(tags)}


def contact_lock_key(phone: str) -> str:
    """The Redis key of a voter's lock (``phone`` in E.164): one voter's messages route one at a time."""
    return f"canvass:contact:{phone}"


@contextlib.contextmanager
def redis_lock(conn: Any, key: str, timeout_s: float = 30) -> Iterator[None]:
    """A per-contact lock shared by every process (so two webhooks for one voter queue up)."""
    with conn.lock(key, timeout=timeout_s, blocking_timeout=timeout_s):
        yield
