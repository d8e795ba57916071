"""A fake of Twilio's Calls API on loopback: unique CallSids, injected faults, calls played out.

It speaks ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` as Twilio does (auth,
programmed answers and faults are ``tests.fakes.twilio_rest``'s): To, From and Url (or
Twiml) required (400 with 21201, 21213, 21205); 201 with a call resource whose SID is
unique (``CA`` + 32 hex), ``queued``. Then, on a thread of its own, it plays the call by
its ``CallScript``, every request signed with ``X-Twilio-Signature`` over the exact URL:

* status callbacks to ``StatusCallback`` for the events asked (``StatusCallbackEvent``;
  the final one always): ``initiated``, ``ringing``, then ``busy`` / ``no-answer`` /
  ``failed`` / ``canceled``, or ``in-progress`` (answered) and at the end ``completed``
  with ``CallDuration``; ``AnsweredBy`` once answered when ``MachineDetection`` was asked;
* once answered, the voice webhook: ``Url`` fetched (POST) and its TwiML followed —
  ``<Gather>`` posts the script's next keys as ``Digits`` to its action (none left: it
  times out and the next verb runs), ``<Record>`` posts a recording, ``<Redirect>`` is
  followed, ``<Hangup>``, ``<Reject>`` or the end of the document hang up. Each request
  and the TwiML our app answered are kept in ``calls[sid].turns``.

``POST .../Calls/{CallSid}.json`` with ``Status=completed`` hangs up a call being played
(``canceled`` only one not answered yet), as Twilio does. Programming it::

    fake = FakeTwilioCalls(ACCOUNT_SID, AUTH_TOKEN).start()  # TWILIO_API_BASE=fake.url
    fake.for_recipient(VOTER, Answer(callbacks=CallScript("busy")), Answer(callbacks=CallScript(digits=("1",))))
    fake.for_recipient(OTHER, Answer.rate_limited())  # then accepted with the default script
    fake.wait_idle()
    fake.statuses(sid), fake.calls[sid].turns
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import itertools
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urljoin

from tests.fakes.twilio_rest import ERRORS, Answer, FakeTwilioResource, Form, first

__all__ = ["Answer", "CallScript", "FakeTwilioCalls", "PlayedCall", "Turn"]

OUTCOMES = ("completed", "busy", "no-answer", "failed", "canceled")
MACHINE = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")
ANSWERED_BY = ("human", *MACHINE, "unknown")
SIP = {"completed": 200, "busy": 486, "no-answer": 487, "failed": 404, "canceled": 487}
MAX_TURNS = 50  # a TwiML loop in our app ends here rather than never


@dataclasses.dataclass(frozen=True)
class CallScript:
    """How one call plays out; the default: a human answers, presses nothing, and it ends.

    ``outcome``: ``completed`` (answered) or ``busy``, ``no-answer``, ``failed``,
    ``canceled`` (never answered). ``answered_by``: Twilio's ``AnsweredBy``, sent only when
    the request asked for machine detection. ``digits``: the keys pressed at each
    ``<Gather>`` in order (``""``: it times out). ``duration_s``: ``CallDuration`` of an
    answered call. ``error_code``: ``ErrorCode`` of the final callback. ``answer``: fetch
    the voice webhook once answered (``False``: status callbacks only).
    """

    outcome: str = "completed"
    answered_by: str = "human"
    digits: Sequence[str] = ()
    duration_s: int = 10
    error_code: int | None = None
    answer: bool = True

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {self.outcome!r}")
        if self.answered_by not in ANSWERED_BY:
            raise ValueError(f"answered_by must be one of {', '.join(ANSWERED_BY)}, got {self.answered_by!r}")
        if self.duration_s < 0 or not all(re.fullmatch(r"[0-9*#]*", keys) for keys in self.digits):
            raise ValueError(f"duration_s must be >= 0, digits keypad keys; got {self.duration_s!r}, {self.digits!r}")


@dataclasses.dataclass(frozen=True)
class Turn:
    """One voice webhook request: where, what, our app's HTTP status (0: unreachable) and its TwiML."""

    url: str
    form: Mapping[str, str]
    status: int
    twiml: str


@dataclasses.dataclass
class PlayedCall:
    """A call taken: its script, its voice webhook turns, and its last status (Twilio's words)."""

    sid: str
    to: str
    from_: str
    script: CallScript
    status: str = "queued"
    turns: list[Turn] = dataclasses.field(default_factory=list)
    hang_up: threading.Event = dataclasses.field(default_factory=threading.Event)


class FakeTwilioCalls(FakeTwilioResource):
    """Twilio's Calls API for one account, on a free loopback port (``url``).

    ``script``: how calls play out unless their ``Answer`` says (``callbacks=CallScript``).
    The other options are ``FakeTwilioResource``'s; ``shuffle`` / ``duplicate`` do not
    apply: a call's own steps keep their order.
    """

    resource = "Calls"
    sid_prefix = "CA"
    errors: ClassVar[Mapping[int, str]] = {
        **ERRORS,
        21201: "No 'To' number is specified",
        21205: "Url is not a valid URL",
        21211: "Invalid 'To' Phone Number",
        21213: "No 'From' number is specified",
        21215: "Account not authorized to call this number: enable its geographic permission",
        21610: "Attempt to call an unsubscribed recipient",
    }

    def __init__(self, account_sid: str, auth_token: str, *, script: CallScript | None = None, **options: Any):
        super().__init__(account_sid, auth_token, **options)
        self.script = script or CallScript()
        self.calls: dict[str, PlayedCall] = {}

    def start(self) -> FakeTwilioCalls:
        """Serve in a background thread; return self."""
        return super().start()  # type: ignore[no-any-return]

    def statuses(self, sid: str) -> list[str]:
        """``CallStatus`` of each status callback posted for call ``sid``, in order."""
        # Only status callbacks carry CallbackSource; voice webhooks do not.
        posted = [c.form for c in self.callbacks if c.form.get("CallSid") == sid]
        return [form["CallStatus"] for form in posted if "CallbackSource" in form]

    def invalid(self, form: Form) -> int | None:
        """Twilio's error code for a form it refuses."""
        if not first(form, "To"):
            return 21201
        if not first(form, "From"):
            return 21213
        urls = [first(form, name) for name in ("Url", "StatusCallback") if first(form, name)]
        if not (urls or first(form, "Twiml")) or not all(u.startswith(("http://", "https://")) for u in urls):
            return 21205
        return None

    def resource_body(self, form: Form, sid: str) -> dict[str, Any]:
        """A call resource, ``queued``."""
        now = email.utils.format_datetime(dt.datetime.now(dt.UTC))
        return {
            "sid": sid,
            "status": self.calls[sid].status if sid in self.calls else "queued",
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "direction": "outbound-api",
            "to": first(form, "To"),
            "from": first(form, "From"),
            "answered_by": None,
            "date_created": now,
            "date_updated": now,
            "duration": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
        }

    def claim(self, form: Form, sid: str, answer: Answer) -> None:
        """Keep the call from the moment it has a SID (a hang-up may come before its answer is read)."""
        script = self.script if answer.callbacks is None else answer.callbacks
        with self._lock:
            self.calls[sid] = PlayedCall(sid, first(form, "To"), first(form, "From"), script)

    def taken(self, form: Form, sid: str, answer: Answer) -> None:
        """Play the call on a thread of its own (counted until it ends)."""
        self.tasks.add(1)
        threading.Thread(target=self._play, args=(form, self.calls[sid]), daemon=True).start()

    def update(self, sid: str, form: Form) -> tuple[int, Any]:
        """Hang up (``Status=completed``) or cancel (``Status=canceled``, unanswered only) a call."""
        call = self.calls.get(sid)
        if call is None:
            return 404, self.error_body(20404, 404)
        status = first(form, "Status")
        if status not in ("completed", "canceled"):
            return 400, self.error_body(21218, 400)
        if status == "completed" or call.status in ("queued", "initiated", "ringing"):
            call.hang_up.set()
        return 200, self.resource_body({"To": [call.to], "From": [call.from_]}, sid)

    def _fields(self, form: Form, sid: str, status: str) -> dict[str, str]:
        """The fields of every request Twilio makes about a call."""
        to, caller = first(form, "To"), first(form, "From")
        return {
            **{"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": sid, "CallStatus": status},
            **{"Direction": "outbound-api", "From": caller, "To": to, "Caller": caller, "Called": to},
        }

    def _play(self, form: Form, call: PlayedCall) -> None:
        try:
            events = {*form.get("StatusCallbackEvent", []), "completed"}
            amd = {"AnsweredBy": call.script.answered_by} if first(form, "MachineDetection") else {}
            sequence = itertools.count()

            def report(status: str, event: str, **extra: str) -> None:
                call.status = status
                if event in events and first(form, "StatusCallback"):
                    fields = self._fields(form, call.sid, status) | {"CallbackSource": "call-progress-events"}
                    fields |= {"SequenceNumber": str(next(sequence)), "Timestamp": _now()} | extra
                    self.poster.post(first(form, "StatusCallback"), fields)

            for status in ("initiated", "ringing"):
                if self.poster.stopping.wait(self.poster.gap_s):
                    return
                report(status, status)
            outcome = "canceled" if call.hang_up.is_set() else call.script.outcome
            error = {"ErrorCode": str(call.script.error_code)} if call.script.error_code else {}
            if outcome != "completed":
                report(outcome, "completed", CallDuration="0", SipResponseCode=str(SIP[outcome]), **error)
                return
            report("in-progress", "answered", **amd)
            if call.script.answer and first(form, "Url"):
                self._converse(form, call, amd)
            report("completed", "completed", CallDuration=str(call.script.duration_s), SipResponseCode="200", **amd)
        finally:
            self.tasks.add(-1)

    def _converse(self, form: Form, call: PlayedCall, amd: Mapping[str, str]) -> None:
        """Fetch the voice webhook and follow its TwiML until the call hangs up."""
        url, extra, keys = first(form, "Url"), {}, list(call.script.digits)
        for _ in range(MAX_TURNS):
            if call.hang_up.is_set() or self.poster.stopping.wait(self.poster.gap_s):
                return
            fields = self._fields(form, call.sid, "in-progress") | dict(amd) | extra
            status, twiml = self.poster.fetch(url, fields)
            call.turns.append(Turn(url, fields, status, twiml))
            step = self._follow(twiml, url, keys) if status == 200 else None
            if step is None:  # hung up (a non-200 answer: Twilio says "an application error" and hangs up)
                return
            url, extra = step

    def _follow(self, twiml: str, url: str, keys: list[str]) -> tuple[str, dict[str, str]] | None:
        """The next request the TwiML leads to (action or redirect URL, fields), or ``None``: hang up."""
        try:
            root = ET.fromstring(twiml)
        except ET.ParseError:
            return None
        for verb in root if root.tag == "Response" else ():
            target = urljoin(url, verb.get("action") or url)
            if verb.tag == "Gather":
                pressed = keys.pop(0) if keys else ""
                if pressed or verb.get("actionOnEmptyResult") == "true":
                    return target, {"Digits": pressed}
            elif verb.tag == "Record":
                recording = f"RE{uuid.uuid4().hex}"
                where = f"{self.url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording}"
                fields = {"RecordingSid": recording, "RecordingUrl": where, "RecordingDuration": "3"}
                return target, fields | {"Digits": keys.pop(0) if keys else "#"}
            elif verb.tag == "Redirect":
                return urljoin(url, (verb.text or "").strip() or url), {}
            elif verb.tag in ("Hangup", "Reject"):
                return None
        return None


def _now() -> str:
    return email.utils.format_datetime(dt.datetime.now(dt.UTC))
