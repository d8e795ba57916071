"""The URLs Twilio comes back to during a call, each carrying a signed step reference.

Every TwiML document ends in an action URL ``/webhooks/twilio/voice/step?c=<call>&n=<step>&s=<sig>``:
the call, the step that document is for, and an HMAC of both under the app's secret. Twilio
signs each request over the whole URL as well; ours additionally makes a reference that
was never issued (someone guessing call ids through a sandbox page, say) worthless, and
the step number lets a repeated request get the same answer instead of moving the flow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

ANSWER_PATH = "/webhooks/twilio/voice"
STEP_PATH = "/webhooks/twilio/voice/step"
STATUS_PATH = "/webhooks/twilio/call-status"


@dataclasses.dataclass(frozen=True)
class CallLinks:
    """Makes and checks the call URLs of one deployment."""

    public_base_url: str
    secret: str = dataclasses.field(repr=False)

    @classmethod
    def of(cls, settings: Any) -> CallLinks:
        """The call URLs of the deployment ``settings`` (``bot.settings.Settings``) describe."""
        return cls(settings.public_base_url, settings.secret_key)

    def sign(self, call_id: int, step: int) -> str:
        """The reference's signature: 16 hex digits of HMAC-SHA256 over call and step."""
        message = f"{call_id}.{step}".encode()
        return hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()[:16]

    def verify(self, call_id: int, step: int, signature: str) -> bool:
        """True when ``signature`` is the one issued for this call and step."""
        # As bytes: a reference with characters outside ASCII is simply not ours (no TypeError).
        return hmac.compare_digest(self.sign(call_id, step).encode(), (signature or "").encode("utf-8", "replace"))

    def answer(self, call_id: int) -> str:
        """The voice webhook of a call we place (step 0)."""
        return self._url(ANSWER_PATH, call_id, 0, with_step=False)

    def step(self, call_id: int, step: int) -> str:
        """Where the document of ``step`` sends the voter's keys (or their silence)."""
        return self._url(STEP_PATH, call_id, step, with_step=True)

    def status(self, call_id: int) -> str:
        """The status callback of a call we place."""
        return f"{self.public_base_url.rstrip('/')}{STATUS_PATH}?{urlencode({'c': call_id})}"

    def _url(self, path: str, call_id: int, step: int, *, with_step: bool) -> str:
        query: dict[str, str | int] = {"c": call_id}
        if with_step:
            query["n"] = step
        query["s"] = self.sign(call_id, step)
        return f"{self.public_base_url.rstrip('/')}{path}?{urlencode(query)}"
