"""HTTP plumbing of Twilio fakes: a loopback server, and webhooks posted back signed.

``LoopbackServer`` serves one fake on a free loopback port (keep-alive, threaded, quiet)
and counts the answers in flight. Twilio signs each webhook with ``X-Twilio-Signature``: HMAC-SHA1, keyed with the auth
token, over the exact URL and the sorted form fields; the twilio SDK's
``RequestValidator.compute_signature`` computes it. ``CallbackPoster`` posts a sequence
of callbacks (a message's statuses, later a call's) on a thread of its own, optionally
shuffled or duplicated as Twilio may deliver them, and keeps every one it posted.
"""

from __future__ import annotations

import dataclasses
import json
import random
import socket
import struct
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from twilio.request_validator import RequestValidator


@dataclasses.dataclass(frozen=True)
class PostedCallback:
    """One callback posted, with our app's HTTP status (0: it could not be reached)."""

    url: str
    form: Mapping[str, str]
    status: int


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Tasks:
    """Counts work in flight (answers, callback sequences) so that a test can wait for none."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def add(self, delta: int) -> None:
        """Count ``delta`` more (or fewer) tasks in flight."""
        with self._changed:
            self._count += delta
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> None:
        """Wait until nothing is in flight; ``TimeoutError`` after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._count == 0, timeout):
                raise TimeoutError(f"the fake Twilio is still busy after {timeout} s ({self._count} tasks)")


class CallbackPoster:
    """Posts signed callbacks in the background, ``gap_s`` apart, and keeps them in ``posted``."""

    def __init__(
        self,
        auth_token: str,
        tasks: Tasks,
        *,
        gap_s: float = 0.01,
        shuffle: bool = False,
        duplicate: bool = False,
        seed: int = 0,
        retries: int = 0,
        max_in_flight: int = 32,
    ) -> None:
        self.signer = RequestValidator(auth_token)
        self.retries = retries
        # Twilio posts callbacks from a dispatcher of limited width, not one connection per
        # message at once: thousands of simultaneous posts would only time out in our app's
        # accept queue (and be lost) on a small test machine.
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self.tasks = tasks
        self.gap_s, self.shuffle, self.duplicate = gap_s, shuffle, duplicate
        self.posted: list[PostedCallback] = []
        self.stopping = threading.Event()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def post_later(self, url: str, forms: Sequence[Mapping[str, str]]) -> None:
        """Post ``forms`` to ``url`` one after the other, on a new thread (shuffled, doubled if set)."""
        sequence = [dict(f) for f in forms for _ in range(2 if self.duplicate else 1)]
        with self._lock:
            if self.shuffle:
                self._random.shuffle(sequence)
            thread = threading.Thread(target=self._post_all, args=(url, sequence), daemon=True)
            self._threads.append(thread)
        self.tasks.add(1)
        thread.start()

    def post(self, url: str, form: Mapping[str, str]) -> int:
        """Post one signed callback now; return our app's HTTP status (0: unreachable).

        With ``retries``, an unreachable app or a 5xx is tried again (0.5 s, 1 s, ... apart).
        """
        return self.fetch(url, form)[0]

    def fetch(self, url: str, form: Mapping[str, str]) -> tuple[int, str]:
        """Post one signed request now, as ``post``; return our app's status and answer (TwiML)."""
        headers = {"X-Twilio-Signature": self.signer.compute_signature(url, dict(form))}
        status, text = 0, ""
        for attempt in range(self.retries + 1):
            try:
                with self._slots:
                    answer = requests.post(url, data=dict(form), headers=headers, timeout=10)
                status, text = answer.status_code, answer.text
            except requests.RequestException:
                status, text = 0, ""
            if (status and status < 500) or self.stopping.wait(0.5 * 2**attempt if attempt < self.retries else 0):
                break
        with self._lock:
            self.posted.append(PostedCallback(url, dict(form), status))
        return status, text

    def stop(self) -> None:
        """Stop posting and wait for the threads to end."""
        self.stopping.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def _post_all(self, url: str, sequence: Sequence[Mapping[str, str]]) -> None:
        try:
            for form in sequence:
                if self.stopping.wait(self.gap_s):
                    return
                self.post(url, form)
        finally:
            self.tasks.add(-1)


class LoopbackServer:
    """A threaded HTTP/1.1 server on a free loopback port; ``respond(handler)`` answers each POST."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler], None], tasks: Tasks) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the twilio SDK's pooled session expects

            def do_POST(self) -> None:
                tasks.add(1)
                try:
                    respond(self)
                finally:
                    tasks.add(-1)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests inspect what the fake kept instead

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # many clients connecting at once are queued, not dropped

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away (killed)
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()


def reply_json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    """Answer with ``body`` (JSON, or text as it is); a client that gave up is not an error."""
    payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True  # the client timed out (a stall) and went away


def reset_connection(handler: BaseHTTPRequestHandler) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), so the client sees "connection reset"."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.rfile.close()  # the socket really closes once its file objects are closed too
    handler.connection.close()
