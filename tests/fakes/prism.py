"""Stoplight Prism serving Twilio's own OpenAPI document: the schema check of request shapes.

Prism answers 201 (with the spec's fixed example, always the same SID) for a request that
matches Twilio's schema and 422 for one that does not, so it validates requests; it is
not a provider to run campaigns against (``tests.fakes.twilio_messages`` is).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import requests
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

from bot.channels.twilio_async import AioHttpClient
from bot.channels.twilio_base import TwilioAccount, make_client
from tests.fakes.twilio_http import free_port

P = TypeVar("P")

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "twilio" / "twilio_api_v2010.json"
START_S = 180  # the first npx run downloads Prism from the npm registry


class PrismUnavailable(RuntimeError):
    """Prism cannot run here (no Node.js, no spec, or it did not start); the message says why."""


@contextlib.contextmanager
def serve_prism(log_path: Path, spec: Path = SPEC) -> Iterator[str]:
    """Run Prism on a free port with one of Twilio's OpenAPI documents (API 2010 by default); yield its URL."""
    npx, node = shutil.which("npx"), shutil.which("node")
    if not (npx and node):
        raise PrismUnavailable("npx/node not found: the Twilio schema check needs Node.js to run Stoplight Prism")
    if not spec.is_file():
        raise PrismUnavailable(f"Twilio's OpenAPI document is missing: {spec}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [npx, "--yes", "@stoplight/prism-cli@5", "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)]
    with log_path.open("wb") as log:
        # A session of its own, so that npx, its shell and Prism's node stop together.
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                with requests.get(url + "/", timeout=1):
                    break  # any answer (Prism says 404 for "/") means it is up
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or still starting
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-1500:]
                why = f"exited with {proc.returncode}" if proc.returncode is not None else "did not answer"
                raise PrismUnavailable(f"Prism {why} within {START_S} s: {tail}")
            time.sleep(0.25)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


class PrismHttpClient(HttpClient):
    """Test only: Prism wants list fields as ``MediaUrl[]=a&MediaUrl[]=b`` (stoplightio/prism#2473).

    The twilio SDK, like real Twilio, repeats the key (``MediaUrl=a&MediaUrl=b``); this
    client renames list-valued keys of form bodies before forwarding (JSON bodies, as the
    Content API's, go as they are), and records what the SDK sent and what Prism answered.
    """

    def __init__(self, inner: TwilioHttpClient) -> None:
        super().__init__(inner.logger, False, inner.timeout)
        self.inner = inner
        self.session = inner.session  # so that the provider's close() closes it
        self.sent: list[dict[str, Any]] = []
        self.statuses: list[int] = []

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Forward the request with list keys renamed; keep the form sent and the status answered."""
        self.sent.append(dict(data or {}))
        if data and (headers or {}).get("Content-Type") != "application/json":
            data = {f"{key}[]" if isinstance(value, list) else key: value for key, value in data.items()}
        response = self.inner.request(
            method, uri, params, data, headers, auth, timeout=timeout, allow_redirects=allow_redirects
        )
        self.statuses.append(response.status_code)
        return response


class PrismAioHttpClient(AioHttpClient):
    """``PrismHttpClient`` for ``send_async``: the same renaming, recorded on the blocking one's lists."""

    def __init__(self, account: TwilioAccount, record: PrismHttpClient) -> None:
        super().__init__(account)
        self.record = record

    async def request(self, method: str, url: str, params: Any = None, data: Any = None, **kwargs: Any) -> Response:  # type: ignore[override]
        """Forward the request with list keys renamed; keep the form sent and the status answered."""
        self.record.sent.append(dict(data or {}))
        if data and (kwargs.get("headers") or {}).get("Content-Type") != "application/json":
            data = {f"{key}[]" if isinstance(value, list) else key: value for key, value in data.items()}
        response = await super().request(method, url, params, data, **kwargs)
        self.record.statuses.append(response.status_code)
        return response


def prism_provider(kind: Callable[..., P], account: TwilioAccount) -> tuple[P, PrismHttpClient]:
    """A provider of ``kind`` whose SDK client talks to Prism (``account.api_base``) through ``PrismHttpClient``.

    ``kind`` is built as ``kind(account, client=...)``: the messaging providers, ``TwilioVoice``.
    Its asynchronous sends (``send_async``) go through ``PrismAioHttpClient``, recorded alike.
    """
    http = PrismHttpClient(TwilioHttpClient(timeout=account.timeout_s))
    provider = kind(account, client=make_client(account, http_client=http))
    provider.async_http = lambda account: PrismAioHttpClient(account, http)
    return provider, http
