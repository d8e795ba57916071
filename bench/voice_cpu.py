"""Benchmark: the CPU one voice request costs canvass, in process, by kind of request.

Run:  .venv/bin/python -m bench.voice_cpu [--pg URL] [--redis URL] [--calls 300]

The same calls as ``bench.voice`` (answer, keys 1, 2, 3, a ``completed`` status
callback; every request signed with the twilio SDK's RequestValidator), sent one at a
time through the WSGI app in this process (no gunicorn, no sockets), after 30 calls of
warm-up. Prints the CPU time (``time.process_time``) and wall time per request of each
kind, and the same for a bare Flask endpoint answering static TwiML through the same
test client. CPU time in one process is little moved by the rest of a shared machine;
the database's and Redis's own CPU is not counted (their round trips are in the wall
time). Checks every call's rows at the end, as ``bench.voice`` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import redis

from bench.loopback import load_average
from bench.voice import FLOW, _prepare, _verify
from bench.voice_calls import DIGITS, LINE, SID, TOKEN

BASE = "http://bench.invalid"


def _calls(client, validator, count: int, first: int, times: dict[str, list[tuple[float, float]]]) -> set[str]:  # type: ignore[no-untyped-def]
    from urllib.parse import urlsplit

    from bench.voice_calls import _problem

    done: set[str] = set()

    def post(url: str, form: dict[str, str], kind: str) -> bytes:
        headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        c0, w0 = time.process_time(), time.perf_counter()
        response = client.post(path, data=form, headers=headers)
        times[kind].append((time.process_time() - c0, time.perf_counter() - w0))
        if response.status_code not in (200, 204):
            raise SystemExit(f"{kind}: HTTP {response.status_code}: {response.data[:300]!r}")
        return response.data

    for n in range(first, first + count):
        fields = {
            "AccountSid": SID,
            "CallSid": f"CAcpu{n:027x}",
            "From": f"+9197{n:08d}",
            "To": LINE,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        body = post(f"{BASE}/webhooks/twilio/voice", {**fields, "CallStatus": "ringing"}, "answer")
        for i, digit in enumerate(DIGITS):
            problem, action = _problem(body, last=False)
            if problem:
                raise SystemExit(f"call {n}, step {i}: {problem}: {body[:300]!r}")
            body = post(action, {**fields, "CallStatus": "in-progress", "Digits": digit}, "step")
        problem, _ = _problem(body, last=True)
        if problem:
            raise SystemExit(f"call {n}, last step: {problem}")
        post(
            f"{BASE}/webhooks/twilio/call-status", {**fields, "CallStatus": "completed", "CallDuration": "31"}, "status"
        )
        done.add(fields["CallSid"])
    return done


def _bare_cpu(count: int) -> tuple[float, float]:
    from bench.bare import app

    client = app.test_client()
    for _ in range(200):
        client.post("/webhooks/twilio/voice", data={"CallSid": "CA1", "Digits": "1"})
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(count):
        client.post("/webhooks/twilio/voice", data={"CallSid": "CA1", "Digits": "1"})
    return (time.process_time() - c0) / count * 1000, (time.perf_counter() - w0) / count * 1000


def main() -> int:
    from bench.dbsetup import add_pg_option, drop_schema, fresh_database

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pg_option(parser)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument(
        "--profile", help="write a cProfile of the measured calls to this file (and of the call-ends to FILE.ends)"
    )
    args = parser.parse_args()

    from twilio.request_validator import RequestValidator

    print(f"load average at the start: {load_average()}")
    schema = f"bench_voice_cpu_{os.getpid()}"
    db = fresh_database(args.pg, schema)
    var_dir = Path(tempfile.mkdtemp(prefix="canvass-bench-voice-cpu-"))
    redis.Redis.from_url(args.redis).flushdb()
    env = {
        "DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "REDIS_URL": args.redis,
        "CANVASS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": BASE,
        "SECRET_KEY": "bench",
        "CANVASS_TTS": "espeak",
        "CANVASS_VAR_DIR": str(var_dir),
    }
    try:
        _, _, funnel_steps = _prepare(db, var_dir)
        os.environ.update(env)
        from ivr.endings import finish_calls
        from web import create_app

        app = create_app()
        client = app.test_client()
        validator = RequestValidator(TOKEN)
        warm: dict[str, list[tuple[float, float]]] = {"answer": [], "step": [], "status": []}
        _calls(client, validator, 30, 0, warm)
        finish_calls(app.extensions["canvass"])
        times: dict[str, list[tuple[float, float]]] = {"answer": [], "step": [], "status": []}
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        done = _calls(client, validator, args.calls, 30, times)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        # The scheduler's part: the flows of the finished calls ended (ivr.endings), here all at once.
        if profiler is not None:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        c0, w0 = time.process_time(), time.perf_counter()
        ended = finish_calls(app.extensions["canvass"])
        end_cpu, end_wall = time.process_time() - c0, time.perf_counter() - w0
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{args.profile}.ends")
        bare_cpu, bare_wall = _bare_cpu(2000)
        total_cpu = sum(c for kind in times.values() for c, _ in kind)
        total = sum(len(kind) for kind in times.values())
        print(f"flow {FLOW}, {args.calls} calls ({total} requests) after 30 of warm-up")
        for kind, values in times.items():
            cpu = statistics.median(c for c, _ in values) * 1000
            wall = statistics.median(w for _, w in values) * 1000
            print(f"  {kind:7} median CPU {cpu:6.2f} ms, wall {wall:6.2f} ms ({len(values)} requests)")
        per_request = total_cpu / total * 1000
        print(f"  all     mean CPU {per_request:6.2f} ms per request")
        print(
            f"  call-ends (scheduler) {end_cpu / max(1, ended) * 1000:.2f} ms CPU, "
            f"{end_wall / max(1, ended) * 1000:.2f} ms wall per call ({ended} calls), "
            f"= {end_cpu / total * 1000:.2f} ms per request"
        )
        print(f"  bare    mean CPU {bare_cpu:6.2f} ms, wall {bare_wall:6.2f} ms per request")
        print(f"  ratio   canvass / bare CPU: {per_request / bare_cpu:.1f}x")
        checks = _verify(db, done, funnel_steps)
        for name, value in checks.items():
            print(f"  check: {name}: {value}")
        print(f"load average at the end: {load_average()}")
        ok = (
            checks["funnel rows found"] == checks["funnel rows expected"]
            and checks["answers found"] == checks["answers expected"]
        )
        return 0 if ok else 1
    finally:
        db.dispose()
        drop_schema(args.pg, schema)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
