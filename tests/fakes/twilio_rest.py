"""One Twilio REST list resource faked on loopback: auth, programmed answers, faults.

The shared half of ``twilio_messages`` (Messages.json) and ``twilio_calls`` (Calls.json).
``FakeTwilioResource`` speaks ``POST /2010-04-01/Accounts/{AccountSid}/{resource}.json``
as Twilio does: HTTP Basic auth (401 otherwise), the form checked by the subclass (400
with Twilio's JSON error), then the programmed ``Answer`` — per recipient, for the next
requests, else the default — with its latency and faults (429, 500, a stall, a reset).
A request taken gets a unique SID (``sid_prefix`` + 32 hex; ``claim`` notes it) and the
subclass's resource, then ``taken`` runs (posting callbacks, playing a call).
``POST .../{resource}/{Sid}.json`` (an update) goes to ``update``; Twilio's 404 by default.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import math
import random
import re
import threading
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs

from tests.fakes.twilio_http import CallbackPoster, LoopbackServer, PostedCallback, Tasks, reply_json, reset_connection

Form = Mapping[str, list[str]]
# Twilio's messages for the errors every resource answers alike; subclasses add their own.
ERRORS = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
}


@dataclasses.dataclass(frozen=True)
class Answer:
    """How the fake treats one request; the default accepts it at once.

    ``status`` with ``error_code``: refuse with Twilio's JSON error. ``body``: answer this
    instead (text or JSON). ``latency_s``: wait before answering. ``stall_s``: accept the
    request but answer that late (``math.inf``: not before ``stop``), then post its
    callbacks. ``reset``: drop the connection, no answer; nothing taken, unless ``taken``:
    the request was taken first (a SID given, its callbacks posted) and the answer lost.
    ``callbacks``: what is posted back once taken, in the fake's own terms (a message's
    ``Callback`` statuses, a call's ``CallScript``); ``None``: the fake's default.
    """

    status: int = 201
    error_code: int | None = None
    body: Any = None
    latency_s: float = 0.0
    stall_s: float = 0.0
    reset: bool = False
    taken: bool = False
    callbacks: Any = None

    def __post_init__(self) -> None:
        if self.latency_s < 0 or self.stall_s < 0:
            raise ValueError(f"latency_s and stall_s must be >= 0, got {self.latency_s!r} and {self.stall_s!r}")
        if self.error_code is not None and self.status < 400:
            raise ValueError(f"an error_code needs an HTTP error status, got {self.status!r}")
        if self.taken and not (self.reset and self.status < 300):
            raise ValueError("taken describes a reset after the request was taken: it needs reset=True")

    @property
    def accepts(self) -> bool:  # the request is taken: its callbacks will come
        return self.status < 300 and (self.taken or not self.reset)

    @classmethod
    def refused(cls, code: int, status: int = 400) -> Answer:
        """A permanent refusal such as 21211 (invalid To), 21610 (unsubscribed), 21215 (geo permission)."""
        return cls(status=status, error_code=code)

    @classmethod
    def rate_limited(cls) -> Answer:  # HTTP 429, Twilio's 20429
        return cls(status=429, error_code=20429)

    @classmethod
    def server_error(cls) -> Answer:  # HTTP 500, Twilio's 20500
        return cls(status=500, error_code=20500)

    @classmethod
    def stalled(cls, seconds: float = math.inf) -> Answer:
        """Take the request but answer only after ``seconds`` (past the client's timeout)."""
        return cls(stall_s=seconds)

    @classmethod
    def connection_reset(cls, *, taken: bool = False) -> Answer:
        """A TCP RST after reading the request; with ``taken``, after taking it."""
        return cls(reset=True, taken=taken)


@dataclasses.dataclass(frozen=True)
class Request:
    """One request as received, with the HTTP status answered (0: reset) and the SID given."""

    path: str
    form: Form
    status: int
    sid: str | None

    def get(self, name: str) -> str | None:
        """The first value of form field ``name``."""
        values = self.form.get(name)
        return values[0] if values else None


class FakeTwilioResource:
    """A Twilio list resource for one account, on a free loopback port (``url``).

    Subclasses set ``resource`` ("Messages"), ``sid_prefix`` ("SM") and ``errors``, and
    implement ``invalid``, ``resource_body`` and ``taken``. ``latency_s``: every answer
    first waits a random time in this range (seeded). The callback options go to the
    ``CallbackPoster`` (``twilio_http``).
    """

    resource: ClassVar[str]
    sid_prefix: ClassVar[str]
    errors: ClassVar[Mapping[int, str]] = ERRORS

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        default: Answer | None = None,
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
        self._path = re.compile(rf"/2010-04-01/Accounts/(?P<sid>[^/]+)/{self.resource}(?:/(?P<item>[^/]+))?\.json")
        self._by_recipient: dict[str, collections.deque[Answer]] = {}
        self._next: collections.deque[Answer] = collections.deque()
        self._lock = threading.Lock()
        self.server = LoopbackServer(self.answer, self.tasks)
        self.url = self.server.url

    @property
    def callbacks(self) -> list[PostedCallback]:
        """Every callback posted so far, with our app's answer."""
        return list(self.poster.posted)

    def start(self) -> Any:
        """Serve in a background thread; return self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Release stalled answers, stop serving and posting."""
        self.poster.stopping.set()
        self.server.stop()
        self.poster.stop()

    def for_recipient(self, to: str, *answers: Answer) -> None:
        """Answer the next requests to ``to`` so, in order."""
        with self._lock:
            self._by_recipient.setdefault(self.recipient(to), collections.deque()).extend(answers)

    def next_requests(self, *answers: Answer) -> None:
        """Answer the next requests (those without a recipient's own answer) so, in order."""
        with self._lock:
            self._next.extend(answers)

    def requests_to(self, to: str) -> list[Request]:
        """The requests sent to ``to``, in arrival order."""
        with self._lock:
            return [r for r in self.requests if self.recipient(r.get("To") or "") == self.recipient(to)]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every request is answered and every callback posted (else ``TimeoutError``)."""
        self.tasks.wait_idle(timeout)

    def recipient(self, to: str) -> str:
        """The key of a recipient's answers (subclasses strip channel prefixes)."""
        return to

    def invalid(self, form: Form) -> int | None:
        """Twilio's error code for a form it refuses, else ``None``."""
        raise NotImplementedError

    def resource_body(self, form: Form, sid: str) -> dict[str, Any]:
        """The JSON resource answered for a request taken as ``sid``."""
        raise NotImplementedError

    def claim(self, form: Form, sid: str, answer: Answer) -> None:
        """Note a request taken as ``sid`` before its answer goes (nothing by default)."""

    def taken(self, form: Form, sid: str, answer: Answer) -> None:
        """What happens once a request is taken (its answer sent or lost): callbacks, a call."""

    def update(self, sid: str, form: Form) -> tuple[int, Any]:
        """Answer ``POST .../{resource}/{sid}.json``: (status, body); Twilio's 404 by default."""
        return 404, self.error_body(20404, 404)

    def error_body(self, code: int, status: int) -> dict[str, Any]:
        """Twilio's JSON error for ``code``."""
        return {
            "code": code,
            "message": self.errors.get(code, f"Error {code}"),
            "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
        }

    def _choose(self, to: str) -> Answer:
        with self._lock:
            for queue in (self._by_recipient.get(self.recipient(to)), self._next):
                if queue:
                    return queue.popleft()
        return self.default

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one ``POST``: auth, then the form, then the programmed answer."""
        form = parse_qs(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)).decode(), True)
        match = self._path.fullmatch(handler.path)
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if match is None:
            answer = Answer.refused(20404, 404)
        elif match["sid"] != self.account_sid or handler.headers.get("Authorization") != expected:
            answer = Answer.refused(20003, 401)
        elif match["item"]:
            status, body = self.update(match["item"], form)
            with self._lock:
                self.requests.append(Request(handler.path, form, status, match["item"]))
            return reply_json(handler, status, body)
        else:
            code = self.invalid(form)
            answer = Answer.refused(code) if code is not None else self._choose(first(form, "To"))
        sid = self.sid_prefix + uuid.uuid4().hex if answer.accepts else None
        if sid is not None:
            self.claim(form, sid, answer)
        with self._lock:
            self.requests.append(Request(handler.path, form, 0 if answer.reset else answer.status, sid))
            latency = answer.latency_s + self._random.uniform(*self.latency_s)
        if self.poster.stopping.wait(latency):
            return None
        if answer.reset:
            reset_connection(handler)
            if sid is not None:
                self.taken(form, sid, answer)
            return None
        if answer.stall_s and self.poster.stopping.wait(None if math.isinf(answer.stall_s) else answer.stall_s):
            return None
        if answer.body is not None:
            body = answer.body
        elif sid is not None:
            body = self.resource_body(form, sid)
        else:
            body = self.error_body(answer.error_code or answer.status, answer.status)
        reply_json(handler, answer.status, body)
        if sid is not None:
            self.taken(form, sid, answer)
        return None


def first(form: Form, name: str) -> str:
    """The first value of form field ``name``, or ``""``."""
    values = form.get(name)
    return values[0] if values else ""
