"""Benchmark: signed inbound webhooks under gunicorn (2 workers) vs a bare Flask endpoint.

Run:  .venv/bin/python -m bench.inbound [--pg URL] [--step 5] [--workers 2] [--gunicorn-workers 2]

In one run, against a fresh PostgreSQL schema and a Redis database of its own, with
``--workers`` RQ workers (niced) draining the inbound queue and sending the replies
through the sandbox provider the whole time:
- the highest sustained rate (zero errors, the offered rate kept, p99 under 100 ms) of
  the bare endpoint and of canvass's `/webhooks/twilio/messages` (each request signed,
  de-duplicated and stored; the workers route it into a keyword-triggered flow and
  send its two replies), offered in steps of 50 req/s up to 200, then 100, after a
  short warm-up; target >= 60 % of the bare endpoint's, and >= 1,000 req/s if the
  machine allows; then how long the workers take to catch up;
- p99 latency at 300 req/s offered; target <= 50 ms;
- inbound-to-reply-handed-to-provider latency at 100 req/s, end to end: from the load
  generator's send to the reply's ``sent_at``.
The load generator (asyncio + aiohttp, open loop) runs on the same 2-core machine.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import redis
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bench.loopback import (
    ROOT,
    Form,
    Trial,
    bench_parser,
    canvass_env,
    free_port,
    highest_rate,
    load_average,
    offer,
    percentile_ms,
    serve,
    signed,
    stop,
    tree_cpu_s,
)

TOKEN = "bench-token"
SID = "AC" + "0123456789abcdef" * 2
TO = "+919999900002"


def _max_rate(url: str, make_form: Callable[[int], Form], step: float) -> tuple[int, float]:
    """The highest offered rate sustained, and its p99 (ms).

    Sustained: every request answered 200, the offered rate kept, and p99 under 100 ms
    (beyond that the server is only queueing). Every attempt sends new MessageSids and
    voters (a repeated one would only be de-duplicated).
    """
    offer(url, 20, 2, lambda i: make_form(90_000_000 + i))  # warm up each worker (caches, connections)
    best, trial = highest_rate(
        lambda rate, attempt: offer(url, rate, step, lambda i: make_form(30_000_000 + attempt * 100_000 + i)),
        limit_ms=100,
    )
    return best, trial.p(0.99) if trial else 0.0


def _worker(env: dict[str, str], role: str = "worker") -> subprocess.Popen[bytes]:
    # Niced: answering Twilio comes first, routing uses the CPU that is left (as a
    # deployment would set it up on a small machine).
    args = ["--simple"] if role == "worker" else []
    return subprocess.Popen(
        ["nice", "-n", "10", sys.executable, "-m", "worker", role, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _at_300(url: str, make_form: Callable[[int], Form], pid: int) -> tuple[Trial, float]:
    """300 req/s for 10 s: the trial, and the server's CPU ms per request."""
    before = tree_cpu_s(pid)
    trial = offer(url, 300, 10, make_form)
    return trial, (tree_cpu_s(pid) - before) / 3000 * 1000


def _backlog(db) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Stored messages not yet routed, and replies not yet handed to the provider."""
    from bot.models import Message, QueuedInbound

    with db.session() as s:
        waiting = s.scalar(select(func.count()).select_from(QueuedInbound).where(QueuedInbound.routed_at.is_(None)))
        unsent = s.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.direction == "out", Message.status.in_(("pending", "sending")))
        )
    return int(waiting or 0), int(unsent or 0)


def _settle(db, timeout: float = 900) -> float:  # type: ignore[no-untyped-def]
    """Wait until every stored message is routed and every reply handed over; return seconds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _backlog(db) == (0, 0):
            return time.monotonic() - start
        time.sleep(0.5)
    raise SystemExit(f"the workers did not catch up within {timeout:.0f} s: backlog {_backlog(db)}")


def main() -> int:
    parser = bench_parser(__doc__, redis_db=6, step=5.0, step_help="seconds per offered rate")
    parser.add_argument("--workers", type=int, default=2, help="RQ workers (drain and sends) during the run")
    args = parser.parse_args()

    from bench.dbsetup import drop_schema, fresh_database
    from bot.engine import load_path
    from bot.flowstore import store
    from bot.models import Contact, Message, Sender

    # A schema of this run's own: other runs (other checkouts) may share the server.
    schema = f"bench_inbound_{os.getpid()}"
    db = fresh_database(args.pg, schema)
    with db.session() as s:
        flow_path = ROOT / "flows" / "grievance_intake.yaml"
        store(s, load_path(flow_path), flow_path.read_text())
        # Replies go out through the sandbox provider: the workers hand them over
        # without leaving the machine.
        s.add(Sender(provider="sandbox", channel="sms", address=TO, name="bench", healthy=True))
    conn = redis.Redis.from_url(args.redis)
    conn.flushdb()
    port, bare_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/webhooks/twilio/messages"
    env = canvass_env(db.engine.url.render_as_string(hide_password=False), args.redis, base, SID, TOKEN)
    validator = RequestValidator(TOKEN)
    run_id = uuid.uuid4().hex[:8]

    def phone(i: int) -> str:
        return f"+9198{i % 100000000:08d}"

    def message(i: int) -> Form:
        # A new voter and MessageSid each time: every message starts a conversation.
        form = {
            "MessageSid": f"SM{run_id}{i:024x}",
            "AccountSid": SID,
            "From": phone(i),
            "To": TO,
            "Body": "complaint about my booth",
            "NumMedia": "0",
        }
        return signed(validator, url, form)

    print(f"load average before: {load_average()}")
    bare = serve("bench.bare:app", bare_port, env, args.gunicorn_workers)
    bare_url = f"http://127.0.0.1:{bare_port}/webhooks/twilio/messages"
    try:
        bare_rate, bare_p99 = _max_rate(bare_url, lambda i: ({"Body": "x"}, {}), args.step)
        trial, cpu_ms = _at_300(bare_url, lambda i: ({"Body": "x"}, {}), bare.pid)
    finally:
        stop(bare)
    print(f"bare Flask endpoint: highest sustained rate with zero errors {bare_rate} req/s (p99 {bare_p99:.1f} ms)")
    print(
        f"bare at 300 req/s offered for 10 s: p50 {trial.p(0.5):.1f} ms, p99 {trial.p(0.99):.1f} ms, "
        f"errors {trial.errors}{'' if trial.kept else ', offered rate not kept'}; "
        f"gunicorn CPU {cpu_ms:.2f} ms per request"
    )

    app = serve("web.wsgi:app", port, env, args.gunicorn_workers)
    # The scheduler too, as `make run` starts it: its sweep routes stored messages
    # whose drain job was lost (on a shared machine, someone may flush the Redis db).
    workers = [_worker(env) for _ in range(args.workers)] + [_worker(env, "scheduler")]
    try:
        rate, p99 = _max_rate(url, message, args.step)
        ratio = rate / bare_rate if bare_rate else 0.0
        verdict = "meets" if ratio >= 0.6 and rate >= min(1000, int(0.6 * bare_rate)) else "BELOW"
        print(
            f"canvass inbound webhook: {rate} req/s with zero errors (p99 {p99:.1f} ms) = {ratio:.0%} of bare; "
            f"target >= 60 %: {verdict}"
        )
        waiting, unsent = _backlog(db)
        took = _settle(db)
        print(
            f"after the search, {args.workers} niced worker(s) had {waiting} stored messages to route and "
            f"{unsent} replies to hand over: done {took:.1f} s later"
        )
        trial, cpu_ms = _at_300(url, lambda i: message(10_000_000 + i), app.pid)
        verdict = "meets" if trial.p(0.99) <= 50 and not trial.errors and trial.kept else "BELOW"
        print(
            f"at 300 req/s offered for 10 s: p50 {trial.p(0.5):.1f} ms, p99 {trial.p(0.99):.1f} ms, "
            f"errors {trial.errors}{'' if trial.kept else ', offered rate not kept'}; "
            f"target p99 <= 50 ms: {verdict}; gunicorn CPU {cpu_ms:.2f} ms per request"
        )
        took = _settle(db)
        print(f"the messages stored in that step were routed and answered {took:.1f} s after it ended")
        sent: dict[int, float] = {}
        offer(url, 100, 10, lambda i: message(20_000_000 + i), sent=sent)
        _settle(db)
        with db.session() as s:
            first_reply = dict(
                s.execute(
                    select(Contact.phone, func.min(Message.sent_at))
                    .join(Message, Message.contact_id == Contact.id)
                    .where(Message.direction == "out", Message.sent_at.is_not(None))
                    .where(Contact.phone.in_([phone(20_000_000 + i) for i in sent]))
                    .group_by(Contact.phone)
                )
                .tuples()
                .all()
            )
        # From the moment the load generator sent the webhook to the moment the worker
        # had handed the first reply to the provider (one clock: the same machine).
        waits = [
            first_reply[phone(20_000_000 + i)].timestamp() - t
            for i, t in sent.items()
            if phone(20_000_000 + i) in first_reply
        ]
        print(
            "inbound -> first reply handed to the provider at 100 req/s: "
            f"p50 {statistics.median(waits) * 1000:.0f} ms, p95 {percentile_ms(waits, 0.95):.0f} ms, "
            f"max {max(waits) * 1000:.0f} ms over {len(waits)} of {len(sent)} conversations"
        )
        print(f"load average after: {load_average()}")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        stop(app)
        db.dispose()
        drop_schema(args.pg, schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
