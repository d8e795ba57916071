"""Local stand-ins of Twilio's REST APIs, shared by the tests that drive the real twilio SDK.

* ``start_prism`` runs Stoplight Prism (``tests.fakes.prism``) on one of Twilio's OpenAPI
  documents: it answers 2xx to a request that matches Twilio's schema and 422 to one that
  does not. ``PrismHttpClient`` sits between the SDK and Prism and records what was sent.
* ``FakeTwilio`` is a tiny HTTP server on loopback that answers with queued responses
  (status, JSON body, delay), to test behaviour: 429, 5xx, stalls, error bodies.

Without Node.js or the OpenAPI document the schema check is skipped, except with
``CI=true``, where it fails (``unavailable``).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tests.conftest import unavailable
from tests.fakes.prism import PrismUnavailable, serve_prism

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "twilio"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


@contextlib.contextmanager
def start_prism(spec: Path, log_dir: Path) -> Iterator[str]:
    """Prism serving ``spec`` (``tests.fakes.prism``); skip, or fail with CI=true, when it cannot run."""
    try:
        with serve_prism(log_dir / "prism.log", spec) as url:
            yield url
    except PrismUnavailable as exc:
        unavailable(str(exc))


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
