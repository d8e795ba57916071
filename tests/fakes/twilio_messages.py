"""A fake of Twilio's Messages API on loopback: unique SIDs, injected faults, signed callbacks.

It speaks ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` as Twilio does (the
plumbing, auth and faults are ``tests.fakes.twilio_rest``'s): the form checked as Twilio
checks it (400 with Twilio's JSON error: To, From or MessagingServiceSid, Body or
MediaUrl or ContentSid); 201 with a message resource whose SID is unique (``SM`` + 32
hex) and status ``queued``. Then, on a
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

import dataclasses
import datetime as dt
import email.utils
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tests.fakes.twilio_rest import ERRORS, Answer, FakeTwilioResource, Form, Request, first

__all__ = ["DELIVERED", "READ", "Answer", "Callback", "FakeTwilioMessages", "Request"]

REQUIRED = ((("To",), 21604), (("From", "MessagingServiceSid"), 21603), (("Body", "MediaUrl", "ContentSid"), 21602))


@dataclasses.dataclass(frozen=True)
class Callback:
    """One status posted back: Twilio's ``MessageStatus`` and, for a failure, its ``ErrorCode``."""

    status: str
    error_code: int | None = None


DELIVERED = (Callback("sent"), Callback("delivered"))
READ = (*DELIVERED, Callback("read"))


class FakeTwilioMessages(FakeTwilioResource):
    """Twilio's Messages API for one account, on a free loopback port (``url``).

    ``callbacks``: the statuses posted back by default; ``callback_gap_s`` apart, each
    message's shuffled and/or sent twice with ``shuffle`` / ``duplicate`` (``seed``).
    ``latency_s``: every answer first waits a random time in this range (seeded), on top
    of its own ``Answer.latency_s`` — a provider with requests in flight.
    ``callback_retries``: a callback our app could not take (unreachable, 5xx) is posted
    again up to this many times (a loaded test machine, not a Twilio promise).
    """

    resource = "Messages"
    sid_prefix = "SM"
    errors: ClassVar[Mapping[int, str]] = {
        **ERRORS,
        21211: "The 'To' number is not a valid phone number.",
        21602: "Message body is required.",
        21603: "A 'From' phone number is required.",
        21604: "A 'To' phone number is required.",
        21609: "Invalid 'StatusCallback'.",
        21656: "The ContentVariables Parameter is invalid.",
    }

    def __init__(self, account_sid: str, auth_token: str, *, callbacks: Sequence[Callback] = DELIVERED, **options: Any):
        super().__init__(account_sid, auth_token, **options)
        self.default_callbacks = tuple(callbacks)

    def start(self) -> FakeTwilioMessages:
        """Serve in a background thread; return self."""
        return super().start()  # type: ignore[no-any-return]

    def recipient(self, to: str) -> str:
        """E.164, with or without ``whatsapp:``."""
        return to.removeprefix("whatsapp:")

    def invalid(self, form: Form) -> int | None:
        """Twilio's error code for a form it refuses (``REQUIRED``: any of these fields, else that code)."""
        for names, code in REQUIRED:
            if not any(first(form, name) for name in names):
                return code
        callback = first(form, "StatusCallback")
        if callback and not callback.startswith(("http://", "https://")):
            return 21609
        try:
            variables = json.loads(first(form, "ContentVariables") or "{}")
        except ValueError:
            return 21656
        return None if isinstance(variables, dict) else 21656

    def taken(self, form: Form, sid: str, answer: Answer) -> None:
        """Post the message's statuses to its ``StatusCallback``, if it has one."""
        if first(form, "StatusCallback"):
            statuses = self.default_callbacks if answer.callbacks is None else answer.callbacks
            self.poster.post_later(first(form, "StatusCallback"), [self._status(form, sid, c) for c in statuses])

    def resource_body(self, form: Form, sid: str) -> dict[str, Any]:
        """A message resource, ``queued``."""
        return self._resource(form, sid)

    def _resource(self, form: Form, sid: str) -> dict[str, Any]:
        now = email.utils.format_datetime(dt.datetime.now(dt.UTC))
        return {
            "sid": sid,
            "status": "queued",
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "direction": "outbound-api",
            "to": first(form, "To"),
            "from": first(form, "From") or None,
            "messaging_service_sid": first(form, "MessagingServiceSid") or None,
            "body": first(form, "Body"),
            "num_media": str(len(form.get("MediaUrl", []))),
            "date_created": now,
            "date_updated": now,
            "error_code": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    def _status(self, form: Form, sid: str, callback: Callback) -> dict[str, str]:
        """A status callback's form, as Twilio posts it."""
        fields = {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid, "ApiVersion": "2010-04-01"}
        fields |= {"MessageStatus": callback.status, "SmsStatus": callback.status}
        fields |= {name: first(form, name) for name in ("To", "From", "MessagingServiceSid") if first(form, name)}
        if callback.error_code is not None:
            fields["ErrorCode"] = str(callback.error_code)
        return fields
