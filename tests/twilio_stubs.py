"""Local stand-ins of Twilio's REST APIs, shared by the tests that drive the real twilio SDK.

* ``start_prism`` runs Stoplight Prism on one of Twilio's OpenAPI documents: it answers
  2xx to a request that matches Twilio's schema and 422 to one that does not.
  ``PrismHttpClient`` sits between the SDK and Prism and records what was sent.
* ``FakeTwilio`` is a tiny HTTP server on loopback that answers with queued responses
  (status, JSON body, delay), to test behaviour: 429, 5xx, stalls, error bodies.

Without Node.js or the OpenAPI document the schema check is skipped, except with
``CI=true``, where it fails (``unavailable``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs

import pytest
import requests
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "twilio"
PRISM_START_S = 180  # the first npx run downloads Prism from the npm registry
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when CI=true requires the schema check."""
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires the Prism schema check", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def start_prism(spec: Path, log_dir: Path) -> Iterator[str]:
    """Run Prism serving ``spec`` on a free loopback port; yield its base URL."""
    npx, node = shutil.which("npx"), shutil.which("node")
    if not (npx and node):
        unavailable("npx/node not found: the Twilio schema check needs Node.js to run Stoplight Prism")
    if not spec.is_file():
        unavailable(f"Twilio's OpenAPI document is missing: {spec}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = log_dir / "prism.log"
    command = [npx, "--yes", "@stoplight/prism-cli@5", "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)]
    with log_path.open("wb") as log:
        # A session of its own, so that npx, its shell and Prism's node stop together.
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + PRISM_START_S
        while True:
            try:
                with requests.get(url + "/", timeout=1):
                    break  # any answer (Prism says 404 for "/") means it is up
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-1500:]
                why = f"exited with {proc.returncode}" if proc.returncode is not None else "did not answer"
                unavailable(f"Prism {why} within {PRISM_START_S} s: {tail}")
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
    client renames list-valued keys of form bodies before forwarding (JSON bodies go as
    they are), and records what the SDK sent and the statuses Prism answered.
    """

    def __init__(self, inner: TwilioHttpClient) -> None:
        super().__init__(inner.logger, False, inner.timeout)
        self.inner = inner
        self.session = inner.session  # so that closing the provider closes it
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
        self.sent.append(dict(data or {}))
        if data and (headers or {}).get("Content-Type") != "application/json":
            data = {f"{key}[]" if isinstance(value, list) else key: value for key, value in data.items()}
        response = self.inner.request(
            method, uri, params, data, headers, auth, timeout=timeout, allow_redirects=allow_redirects
        )
        self.statuses.append(response.status_code)
        return response


class FakeTwilio:
    """Answers any request with the next queued answer (status, body, delay), else ``default()``.

    ``requests`` keeps (path, form fields) of each request, ``calls`` keeps (method, path,
    raw body) for JSON APIs such as the Content API.
    """

    def __init__(self, default: Callable[[], tuple[int, Any]] | None = None) -> None:
        self.answers: list[tuple[int, Any, float]] = []
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.calls: list[tuple[str, str, str]] = []
        self.release = threading.Event()
        self.default = default or (lambda: (201, self.message()))
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                fake.calls.append((self.command, self.path, raw))
                fake.requests.append((self.path, parse_qs(raw)))
                status, body, delay = fake.answers.pop(0) if fake.answers else (*fake.default(), 0.0)
                if delay and fake.release.wait(delay):
                    return  # the test is over; the client gave up long ago
                payload = b"" if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = answer

            def log_message(self, *args: Any) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def message(self) -> dict[str, Any]:
        return {"sid": f"SM{len(self.requests):032x}", "status": "queued", "account_sid": ACCOUNT_SID}

    def answer(self, status: int, body: Any, delay: float = 0.0) -> None:
        self.answers.append((status, body, delay))

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def running(fake: FakeTwilio) -> Iterator[FakeTwilio]:
    """Serve ``fake`` for the duration of the block."""
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.stop()


def twilio_error(code: int, status: int, message: str) -> dict[str, Any]:
    """The JSON body of a Twilio REST error."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


# Refusals that every Twilio API answers alike: (HTTP status, body, retryable, Twilio code).
REFUSALS = [
    (429, twilio_error(20429, 429, "Too Many Requests"), True, "20429"),
    (429, "", True, None),
    (500, "<html>Internal Server Error</html>", True, None),
    (503, twilio_error(20503, 503, "Service Unavailable"), True, "20503"),
    (401, twilio_error(20003, 401, "Authenticate"), False, "20003"),
    # The RFC 9457 shape, which the SDK raises as TwilioServiceException.
    (
        400,
        {"type": "https://www.twilio.com/docs/errors/20001", "title": "Invalid", "status": 400, "code": 20001},
        False,
        "20001",
    ),
]
