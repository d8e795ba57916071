"""A fake of Twilio's Messages API on loopback: unique SIDs, injected faults, signed callbacks.

It speaks ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` as Twilio does: HTTP
Basic auth (401 otherwise); the form checked as Twilio checks it (400 with Twilio's JSON
error: To, From or MessagingServiceSid, Body or MediaUrl or ContentSid); 201 with a
message resource whose SID is unique (``SM`` + 32 hex) and status ``queued``. Then, on a
thread of its own, it posts the message's statuses to its ``StatusCallback``,
form-encoded and signed with ``X-Twilio-Signature`` (the twilio SDK's
``RequestValidator`` over the exact callback URL), as Twilio does. It keeps every
request and every callback for the test to inspect.

Programming it: ``Answer`` s per recipient (in order, then the default) or for the next
requests; a recipient's own answers come first::

    fake = FakeTwilioMessages(ACCOUNT_SID, AUTH_TOKEN).start()  # TWILIO_API_BASE=fake.url
    fake.for_recipient("+919800000001", Answer.refused(21211))
    fake.for_recipient("+919800000002", Answer.rate_limited())  # then accepted
    fake.for_recipient("+919800000003", Answer(callbacks=READ), Answer.stalled(2.0))
    fake.for_recipient("+919800000004", Answer(callbacks=(Callback("undelivered", 63016),)))
    fake.next_requests(Answer(latency_s=0.3), Answer.server_error(), Answer.connection_reset())
    fake.for_recipient("+919800000005", Answer.connection_reset(taken=True))  # taken, then reset
    ...
    fake.wait_idle()  # every answer given, every callback posted
    fake.requests_to("+919800000001"), fake.callbacks
    fake.stop()
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime as dt
import email.utils
import json
import math
import random
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.twilio_http import CallbackPoster, LoopbackServer, PostedCallback, Tasks, reply_json, reset_connection

REQUIRED = ((("To",), 21604), (("From", "MessagingServiceSid"), 21603), (("Body", "MediaUrl", "ContentSid"), 21602))
PATH = re.compile(r"/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json")
ERRORS = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21609: "Invalid 'StatusCallback'.",
    21656: "The ContentVariables Parameter is invalid.",
}


@dataclasses.dataclass(frozen=True)
class Callback:
    """One status posted back: Twilio's ``MessageStatus`` and, for a failure, its ``ErrorCode``."""

    status: str
    error_code: int | None = None


DELIVERED = (Callback("sent"), Callback("delivered"))
READ = (*DELIVERED, Callback("read"))


@dataclasses.dataclass(frozen=True)
class Answer:
    """How the fake treats one request; the default accepts it at once.

    ``status`` with ``error_code``: refuse with Twilio's JSON error. ``body``: answer this
    instead (text or JSON). ``latency_s``: wait before answering. ``stall_s``: accept the
    message but answer that late (``math.inf``: not before ``stop``), then post its
    callbacks. ``reset``: drop the connection, no answer; nothing sent, unless ``taken``:
    the message was taken first (a SID given, its callbacks posted) and the answer lost.
    ``callbacks``: the statuses posted back when accepted (``None``: the fake's default).
    """

    status: int = 201
    error_code: int | None = None
    body: Any = None
    latency_s: float = 0.0
    stall_s: float = 0.0
    reset: bool = False
    taken: bool = False
    callbacks: Sequence[Callback] | None = None

    def __post_init__(self) -> None:
        if self.latency_s < 0 or self.stall_s < 0:
            raise ValueError(f"latency_s and stall_s must be >= 0, got {self.latency_s!r} and {self.stall_s!r}")
        if self.error_code is not None and self.status < 400:
            raise ValueError(f"an error_code needs an HTTP error status, got {self.status!r}")
        if self.taken and not (self.reset and self.status < 300):
            raise ValueError("taken describes a reset after the message was taken: it needs reset=True")

    @property
    def accepts(self) -> bool:  # the message is taken: its callbacks will come
        return self.status < 300 and (self.taken or not self.reset)

    @classmethod
    def refused(cls, code: int, status: int = 400) -> Answer:
        """A permanent refusal such as 21211 (invalid To), 21610 (unsubscribed), 63016, 63003."""
        return cls(status=status, error_code=code)

    @classmethod
    def rate_limited(cls) -> Answer:  # HTTP 429, Twilio's 20429
        return cls(status=429, error_code=20429)

    @classmethod
    def server_error(cls) -> Answer:  # HTTP 500, Twilio's 20500
        return cls(status=500, error_code=20500)

    @classmethod
    def stalled(cls, seconds: float = math.inf) -> Answer:
        """Take the message but answer only after ``seconds`` (past the client's timeout)."""
        return cls(stall_s=seconds)

    @classmethod
    def connection_reset(cls, *, taken: bool = False) -> Answer:
        """A TCP RST after reading the request; with ``taken``, after taking the message."""
        return cls(reset=True, taken=taken)


@dataclasses.dataclass(frozen=True)
class Request:
    """One request as received, with the HTTP status answered (0: reset) and the SID given."""

    path: str
    form: Mapping[str, list[str]]
    status: int
    sid: str | None

    def get(self, name: str) -> str | None:
        """The first value of form field ``name``."""
        values = self.form.get(name)
        return values[0] if values else None


class FakeTwilioMessages:
    """Twilio's Messages API for one account, on a free loopback port (``url``).

    ``callbacks``: the statuses posted back by default; ``callback_gap_s`` apart, each
    message's shuffled and/or sent twice with ``shuffle`` / ``duplicate`` (``seed``).
    ``latency_s``: every answer first waits a random time in this range (seeded), on top
    of its own ``Answer.latency_s`` — a provider with requests in flight.
    ``callback_retries``: a callback our app could not take (unreachable, 5xx) is posted
    again up to this many times (a loaded test machine, not a Twilio promise).
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        default: Answer | None = None,
        callbacks: Sequence[Callback] = DELIVERED,
        callback_gap_s: float = 0.01,
        shuffle: bool = False,
        duplicate: bool = False,
        seed: int = 0,
        latency_s: tuple[float, float] = (0.0, 0.0),
        callback_retries: int = 0,
    ) -> None:
        if not 0 <= latency_s[0] <= latency_s[1]:
            raise ValueError(f"latency_s must be a range (low, high) of seconds >= 0, got {latency_s!r}")
        self.account_sid, self.auth_token = account_sid, auth_token
        self.latency_s = latency_s
        self._random = random.Random(seed)
        self.default = default or Answer()
        self.default_callbacks = tuple(callbacks)
        self.requests: list[Request] = []
        self.tasks = Tasks()
        self.poster = CallbackPoster(
            auth_token,
            self.tasks,
            gap_s=callback_gap_s,
            shuffle=shuffle,
            duplicate=duplicate,
            seed=seed,
            retries=callback_retries,
        )
        self._by_recipient: dict[str, collections.deque[Answer]] = {}
        self._next: collections.deque[Answer] = collections.deque()
        self._lock = threading.Lock()
        self.server = LoopbackServer(self.answer, self.tasks)
        self.url = self.server.url

    @property
    def callbacks(self) -> list[PostedCallback]:
        """Every status callback posted so far, with our app's answer."""
        return list(self.poster.posted)

    def start(self) -> FakeTwilioMessages:
        """Serve in a background thread; return self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Release stalled answers, stop serving and posting."""
        self.poster.stopping.set()
        self.server.stop()
        self.poster.stop()

    def for_recipient(self, to: str, *answers: Answer) -> None:
        """Answer the next requests to ``to`` (E.164, with or without ``whatsapp:``) so, in order."""
        with self._lock:
            self._by_recipient.setdefault(_bare(to), collections.deque()).extend(answers)

    def next_requests(self, *answers: Answer) -> None:
        """Answer the next requests (those without a recipient's own answer) so, in order."""
        with self._lock:
            self._next.extend(answers)

    def requests_to(self, to: str) -> list[Request]:
        """The requests sent to ``to``, in arrival order."""
        with self._lock:
            return [r for r in self.requests if _bare(r.get("To") or "") == _bare(to)]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every request is answered and every callback posted (else ``TimeoutError``)."""
        self.tasks.wait_idle(timeout)

    def _choose(self, to: str) -> Answer:
        with self._lock:
            for queue in (self._by_recipient.get(_bare(to)), self._next):
                if queue:
                    return queue.popleft()
        return self.default

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one ``POST``: auth, then the form, then the programmed answer."""
        form = parse_qs(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)).decode(), True)
        match = PATH.fullmatch(handler.path)
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if match is None:
            answer = Answer.refused(20404, 404)
        elif match["sid"] != self.account_sid or handler.headers.get("Authorization") != expected:
            answer = Answer.refused(20003, 401)
        else:
            code = _invalid(form)
            answer = Answer.refused(code) if code is not None else self._choose(_first(form, "To"))
        sid = "SM" + uuid.uuid4().hex if answer.accepts else None
        with self._lock:
            self.requests.append(Request(handler.path, form, 0 if answer.reset else answer.status, sid))
        with self._lock:
            latency = answer.latency_s + self._random.uniform(*self.latency_s)
        if self.poster.stopping.wait(latency):
            return
        if answer.reset:
            reset_connection(handler)
            if sid is not None:
                self._post_callbacks(form, sid, answer)
            return
        if answer.stall_s and self.poster.stopping.wait(None if math.isinf(answer.stall_s) else answer.stall_s):
            return
        if answer.body is not None:
            body = answer.body
        elif sid is not None:
            body = self._resource(form, sid)
        else:
            code = answer.error_code or answer.status
            body = {"code": code, "message": ERRORS.get(code, f"Error {code}"), "status": answer.status}
            body["more_info"] = f"https://www.twilio.com/docs/errors/{code}"
        reply_json(handler, answer.status, body)
        if sid is not None:
            self._post_callbacks(form, sid, answer)

    def _post_callbacks(self, form: Mapping[str, list[str]], sid: str, answer: Answer) -> None:
        if _first(form, "StatusCallback"):
            statuses = self.default_callbacks if answer.callbacks is None else answer.callbacks
            self.poster.post_later(_first(form, "StatusCallback"), [self._status(form, sid, c) for c in statuses])

    def _resource(self, form: Mapping[str, list[str]], sid: str) -> dict[str, Any]:
        now = email.utils.format_datetime(dt.datetime.now(dt.UTC))
        return {
            "sid": sid,
            "status": "queued",
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "direction": "outbound-api",
            "to": _first(form, "To"),
            "from": _first(form, "From") or None,
            "messaging_service_sid": _first(form, "MessagingServiceSid") or None,
            "body": _first(form, "Body"),
            "num_media": str(len(form.get("MediaUrl", []))),
            "date_created": now,
            "date_updated": now,
            "error_code": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    def _status(self, form: Mapping[str, list[str]], sid: str, callback: Callback) -> dict[str, str]:
        """A status callback's form, as Twilio posts it."""
        fields = {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid, "ApiVersion": "2010-04-01"}
        fields |= {"MessageStatus": callback.status, "SmsStatus": callback.status}
        fields |= {name: _first(form, name) for name in ("To", "From", "MessagingServiceSid") if _first(form, name)}
        if callback.error_code is not None:
            fields["ErrorCode"] = str(callback.error_code)
        return fields


def _invalid(form: Mapping[str, list[str]]) -> int | None:
    """Twilio's error code for a form it refuses (``REQUIRED``: any of these fields, else that code)."""
    for names, code in REQUIRED:
        if not any(_first(form, name) for name in names):
            return code
    callback = _first(form, "StatusCallback")
    if callback and not callback.startswith(("http://", "https://")):
        return 21609
    try:
        variables = json.loads(_first(form, "ContentVariables") or "{}")
    except ValueError:
        return 21656
    return None if isinstance(variables, dict) else 21656


def _first(form: Mapping[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


def _bare(address: str) -> str:
    return address.removeprefix("whatsapp:")
