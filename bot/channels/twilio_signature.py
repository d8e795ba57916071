"""Twilio's webhook signature, checked exactly as the SDK checks it, for less CPU.

Twilio signs a webhook with HMAC-SHA1 (keyed by the auth token) over the URL it called
followed by every form field's name and value, sorted by name; the signature comes in
``X-Twilio-Signature``. ``twilio.request_validator.RequestValidator.validate`` accepts
the signature of the URL without its port or with its default port (Twilio's own
signing is inconsistent there). This class accepts the very same signatures — the two
URL forms are made by the SDK's own ``remove_port`` / ``add_port`` — but it parses each
URL once (every webhook of a route comes to the same URL), starts each HMAC from a
keyed copy, and computes the second form's HMAC only when the first does not match.
The SDK's check costs ~0.1 ms a request (two HMACs, a URL parse, and two exceptions
per field while it looks for a multi-dict's methods); this one a few microseconds.
``tests/bot/test_twilio_signature.py`` checks that both accept and refuse the same
requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlparse

from twilio.request_validator import add_port, remove_port

# Distinct URLs whose two signed forms are kept; a route's webhooks share one URL, so
# only query strings make more. Past this many the cache starts afresh.
KEPT_URLS = 256


class TwilioSignature:
    """Check ``X-Twilio-Signature`` for one auth token (made once per process)."""

    def __init__(self, auth_token: str) -> None:
        self._keyed = hmac.new(auth_token.encode("utf-8"), digestmod=hashlib.sha1)
        self._forms: dict[str, tuple[str, ...]] = {}

    def valid(self, url: str, form: Mapping[str, str], signature: str | None) -> bool:
        """True when ``signature`` signs ``url`` (with or without its port) and ``form``; none fails."""
        if not signature:
            return False
        try:
            expected = signature.encode("ascii")
        except UnicodeEncodeError:
            return False  # a signature is base64: this one can match nothing
        fields = "".join([name + form[name] for name in sorted(form)])
        for signed_url in self._url_forms(url):
            mac = self._keyed.copy()
            mac.update((signed_url + fields).encode("utf-8"))
            if hmac.compare_digest(base64.b64encode(mac.digest()), expected):
                return True
        return False

    def _url_forms(self, url: str) -> tuple[str, ...]:
        forms = self._forms.get(url)
        if forms is None:
            parsed = urlparse(url)
            # The URL as given first: it is the one Twilio signs when PUBLIC_BASE_URL is right.
            candidates = sorted({remove_port(parsed), add_port(parsed)}, key=lambda u: u != url)
            forms = tuple(candidates)
            if len(self._forms) >= KEPT_URLS:
                self._forms.clear()
            self._forms[url] = forms
        return forms
