"""The fake Twilio Messages API (``tests.fakes.twilio_messages``) as a process of its own.

    python -m bench.fake_twilio [--latency S] [--callbacks] [--times FILE]

Prints its base URL on the first line of stdout, then serves until SIGTERM. Every
accepted request is recorded as (arrival time, To, template or not); on SIGTERM the
records are written to ``--times`` as JSON. Without ``--callbacks`` no status callback is
posted (the benchmark's app is not serving); the fake keeps only its last requests, so
its memory stays flat over a 100,000-message run.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import threading
import time
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.dispatch_world import SID, TOKEN
from tests.fakes.twilio_messages import Answer, FakeTwilioMessages

_local = threading.local()


class TimedFake(FakeTwilioMessages):
    """Records when each accepted request arrived (before any injected latency)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests = collections.deque(maxlen=100)  # type: ignore[assignment]
        self.arrivals: list[tuple[float, str, bool]] = []

    def answer(self, handler: Any) -> None:
        _local.arrived = time.time()
        super().answer(handler)

    def _resource(self, form: Mapping[str, list[str]], sid: str) -> dict[str, Any]:
        to = (form.get("To") or [""])[0].removeprefix("whatsapp:")
        self.arrivals.append((_local.arrived, to, bool(form.get("ContentSid"))))
        return super()._resource(form, sid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--callbacks", action="store_true", help="post sent + delivered status callbacks")
    parser.add_argument("--times", type=Path, help="write the arrivals here (JSON) on SIGTERM")
    args = parser.parse_args()
    # Twilio takes every connection; the standard library's listen backlog of 5 would
    # refuse some when a worker's 96 threads connect at once.
    ThreadingHTTPServer.request_queue_size = 1024
    fake = TimedFake(SID, TOKEN, default=Answer(latency_s=args.latency))
    if not args.callbacks:
        fake.poster.post_later = lambda url, forms: None  # type: ignore[method-assign]
    fake.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(fake.url, flush=True)
    while not done.wait(0.5):
        pass
    arrivals = sorted(fake.arrivals)
    if args.times:
        args.times.write_text(json.dumps({"count": len(arrivals), "arrivals": arrivals}))
    fake.poster.stopping.set()
    fake.server.server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
