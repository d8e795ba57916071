"""Benchmark: Twilio's voice webhooks under gunicorn (2 workers) vs bare Flask endpoints.

Run:  .venv/bin/python -m bench.voice [--pg URL] [--redis URL] [--step 8] [--gap 0.25] [--rates 100,300,500]

In one run, on a fresh PostgreSQL schema with ``flows/ivr_survey.yaml`` loaded, a voice
line mapped to it and every prompt of the flow pre-rendered with espeak-ng (so the TwiML
plays cached audio with ``<Play>``; the client checks that no prompt is spoken with
``<Say>``):

- simulated inbound calls (``bench.voice_calls``), each request signed with the twilio
  SDK's RequestValidator: the answer webhook, then one keypad step per question
  (digits 1, 2, 3) posted to the action URL of the TwiML just received, then a
  ``completed`` status callback: five requests a call. A call starts every 5 / rate
  seconds and its requests are about ``--gap`` apart (later if an answer came later),
  interleaved so that in the middle of a step a request leaves every 1 / rate seconds,
  with ~``rate * 4 * gap / 5`` calls in flight;
- a cached prompt served by ``GET /media/<name>.wav`` at 100 req/s; target p99 <= 5 ms;
- the latency (p50 / p95 / p99, also by kind of request) at fixed offered rates; target
  p99 <= 20 ms at 500 req/s;
- the highest sustained rate (every request answered as expected, the offered rate
  kept, p99 <= 20 ms), offered in steps of 50 req/s up to 200, then 100; a rate that
  fails is tried three times; target >= 500 req/s;
- afterwards, from the database: every call the client completed is ``completed``,
  its flow ended ``completed`` with one funnel row per funnel step and three answers;
  no apology, no prompt spoken with ``<Say>``, no 5xx.

canvass's scheduler (``worker.py scheduler``) runs beside its gunicorn: the status
callback only records a call's end, and the scheduler ends the flows of finished calls
every half second (``ivr.endings``). Its CPU per request is printed next to gunicorn's, and
the checks wait for it to have ended every finished call.

The baseline is ``bench.bare`` (static TwiML, a plain ``send_file``) under the same
gunicorn settings, driven by the same client. Both servers run side by side and take
turns at each measurement (each starts on an idle server: the backlog an overloaded
step leaves is worked off first), so both see about the same load from the rest of the
machine. The client runs on the same two cores as the servers, PostgreSQL and Redis;
every line prints the load average. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
from sqlalchemy import func, select

from bench.loopback import (
    ROOT,
    Trial,
    bench_parser,
    canvass_env,
    free_port,
    highest_rate,
    load_average,
    offer,
    serve,
    settle,
    stop,
    tree_cpu_s,
)
from bench.voice_calls import DIGITS, LINE, SID, TOKEN, Calls

FLOW = "ivr_survey"
TARGET_P99_MS = 20.0
TARGET_RATE = 500
TARGET_MEDIA_P99_MS = 5.0
MEDIA_RATE = 100


def _line(name: str, trial: Trial, cpu_ms: float | None = None, scheduler_ms: float | None = None) -> str:
    kinds = ", ".join(f"{kind} p99 {trial.p(0.99, kind):.1f}" for kind in trial.by_kind if kind)
    text = f"  {name} {trial.rate:.0f} req/s: {trial.summary()}"
    if kinds:
        text += f" ({kinds})"
    if cpu_ms is not None:
        text += f"; gunicorn CPU {cpu_ms:.2f} ms/request"
    if scheduler_ms is not None:
        text += f" + scheduler {scheduler_ms:.2f}"
    return text + f"  [load {load_average()}]"


@dataclasses.dataclass
class Server:
    """A server under test and what was measured on it."""

    name: str
    pid: int
    calls: Calls
    media_url: str
    # canvass's scheduler, which ends the flows of finished calls: its CPU is counted too.
    scheduler_pid: int | None = None
    best: int = 0  # the highest sustained rate
    best_trial: Trial | None = None
    # Offered rate -> the trial and gunicorn's CPU ms per request.
    fixed: dict[int, tuple[Trial, float]] = dataclasses.field(default_factory=dict)
    # Offered rate -> the scheduler's CPU ms per request in that trial.
    scheduler: dict[int, float] = dataclasses.field(default_factory=dict)
    media: tuple[Trial, float] | None = None


def _measure(servers: list[Server], media_size: int, args: argparse.Namespace) -> None:
    """The prompt file, the fixed rates, then the highest sustained rate, each on an idle server.

    The servers take turns at each measurement, so that the bare baseline and canvass
    see about the same load from the rest of the (shared) machine.
    """
    for server in servers:
        server.calls.offer(20, 3, args.gap)  # warm up each worker (imports, caches, connections)
    for server in servers:
        server.media = _on_idle(
            server,
            functools.partial(
                offer, server.media_url, MEDIA_RATE, 10, method="GET", check=lambda body: len(body) == media_size
            ),
        )
        print(_line(f"{server.name} prompt file", *server.media))
    for rate in args.rates:
        for server in servers:
            before = tree_cpu_s(server.scheduler_pid) if server.scheduler_pid else None
            server.fixed[rate] = _on_idle(server, functools.partial(server.calls.offer, rate, 10, args.gap))
            if server.scheduler_pid and before is not None:
                trial = server.fixed[rate][0]
                server.scheduler[rate] = (tree_cpu_s(server.scheduler_pid) - before) / max(1, trial.requests) * 1000
            print(_line(f"{server.name} fixed", *server.fixed[rate], server.scheduler.get(rate)))
    for server in servers:
        _search(server, args)


def _search(server: Server, args: argparse.Namespace) -> None:
    print(f"{server.name}: the highest sustained rate (p99 <= {TARGET_P99_MS:g} ms)  [load {load_average()}]")

    def trial(rate: int, attempt: int) -> Trial:
        return _on_idle(server, functools.partial(server.calls.offer, rate, args.step, args.gap))[0]

    def show(t: Trial) -> None:
        print(_line(server.name, t) + ("" if t.sustained(TARGET_P99_MS) else "  <- not sustained"))

    server.best, server.best_trial = highest_rate(trial, limit_ms=TARGET_P99_MS, on_trial=show)
    settle(server.pid)


def _on_idle(server: Server, measure: Callable[[], Trial]) -> tuple[Trial, float]:
    """Wait until ``server`` is idle, run ``measure``; the trial and gunicorn's CPU ms per request."""
    waited = settle(server.pid)
    if waited > 5:
        print(f"  ({server.name} took {waited:.0f} s to work through the backlog of the previous step)")
    before = tree_cpu_s(server.pid)
    trial = measure()
    return trial, (tree_cpu_s(server.pid) - before) / max(1, trial.requests) * 1000


def _prepare(db, var_dir: Path) -> tuple[str, int, int]:  # type: ignore[no-untyped-def]
    """Load the flow, map the voice line, pre-render the prompts; the intro's media name and size."""
    from bot.engine import load_path
    from bot.flowstore import store
    from ivr.models import VoiceLine
    from ivr.prompts import PromptAudio

    path = ROOT / "flows" / f"{FLOW}.yaml"
    flow = load_path(path)
    with db.session() as s:
        store(s, flow, path.read_text())
        s.add(VoiceLine(address=LINE, flow_name=FLOW))
    prompts = PromptAudio(var_dir, "espeak")
    started = time.perf_counter()
    report = prompts.prerender(flow)
    print(f"pre-rendered with espeak-ng in {time.perf_counter() - started:.1f} s: {report.summary()}")
    missing = [p.text for p in prompts.prompts(flow) if prompts.cached_name(p.text, p.language) is None]
    if missing:
        raise SystemExit(f"prompts not in the cache after pre-rendering: {missing}")
    intro = prompts.prompts(flow)[0]
    name = prompts.cached_name(intro.text, intro.language)
    assert name is not None
    return name, prompts.store.path(name).stat().st_size, len(flow.funnel)  # type: ignore[union-attr]


def _wait_for_endings(db, timeout_s: float = 120) -> None:  # type: ignore[no-untyped-def]
    """Wait until the scheduler has ended the flows of every finished call."""
    from ivr.models import Call

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.session() as s:
            due = s.scalar(select(func.count()).select_from(Call).where(Call.settle_due_at.is_not(None)))
        if not due:
            return
        time.sleep(0.5)
    print(f"  {due} finished call(s) still not ended by the scheduler after {timeout_s:.0f} s")


def _verify(db, completed: set[str], funnel_steps: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Compare the database with the calls the client completed."""
    from bot.models import Answer, FlowSession, FunnelEvent
    from ivr.models import Call

    with db.session() as s:
        calls = s.execute(
            select(Call.sid, Call.status, FlowSession.status, FlowSession.end_reason, Call.session_id).outerjoin(
                FlowSession, FlowSession.id == Call.session_id
            )
        ).all()
        funnel = dict(s.execute(select(FunnelEvent.session_id, func.count()).group_by(FunnelEvent.session_id)).all())
        answers = dict(s.execute(select(Answer.session_id, func.count()).group_by(Answer.session_id)).all())
    found = {sid: row for sid, *row in calls}
    mine = [found[sid] for sid in completed if sid in found]
    return {
        "calls in the database": len(calls),
        "completed by the client": len(completed),
        "of those, found": len(mine),
        "of those, call completed and flow ended 'completed'": sum(
            1
            for status, fs_status, reason, _ in mine
            if (status, fs_status, reason) == ("completed", "ended", "completed")
        ),
        "funnel rows expected": funnel_steps * len(completed),
        "funnel rows found": sum(funnel.get(session, 0) for *_, session in mine),
        "answers expected": len(DIGITS) * len(completed),
        "answers found": sum(answers.get(session, 0) for *_, session in mine),
    }


def main() -> int:
    parser = bench_parser(__doc__, redis_db=9, step=8.0, step_help="seconds of call starts per offered rate")
    parser.add_argument("--gap", type=float, default=0.25, help="seconds between a call's requests")
    parser.add_argument(
        "--rates",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[100, 300, TARGET_RATE],
        help="fixed offered rates (req/s) to report latency at, comma-separated",
    )
    args = parser.parse_args()

    from bench.dbsetup import drop_schema, fresh_database

    print(f"load average at the start: {load_average()}")
    schema = f"bench_voice_{os.getpid()}"
    db = fresh_database(args.pg, schema)
    var_dir = Path(tempfile.mkdtemp(prefix="canvass-bench-voice-"))
    redis.Redis.from_url(args.redis).flushdb()
    port, bare_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = canvass_env(
        db.engine.url.render_as_string(hide_password=False),
        args.redis,
        base,
        SID,
        TOKEN,
        CANVASS_TTS="espeak",
        CANVASS_VAR_DIR=str(var_dir),
    )
    run_id = uuid.uuid4().hex[:8]
    try:
        media_name, media_size, funnel_steps = _prepare(db, var_dir)
        log = var_dir / "gunicorn.log"
        bare = serve("bench.bare:app", bare_port, env, args.gunicorn_workers)
        app = serve("web.wsgi:app", port, env, args.gunicorn_workers, log=log)
        bare_base = f"http://127.0.0.1:{bare_port}"
        baseline = Server("bare", bare.pid, Calls(bare_base, run_id), f"{bare_base}/media/{media_name}")
        command = [sys.executable, "worker.py", "scheduler"]
        scheduler = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        voice = Server("canvass", app.pid, Calls(base, run_id), f"{base}/media/{media_name}", scheduler.pid)
        try:
            _measure([baseline, voice], media_size, args)
            _wait_for_endings(db)
        finally:
            stop(bare)
            stop(app)
            stop(scheduler)
        calls = voice.calls
        checks = _verify(db, calls.completed, funnel_steps)
        logged = [
            line for line in log.read_text(errors="replace").splitlines() if "ERROR" in line or "Traceback" in line
        ]
        print(f"load average at the end: {load_average()}")
        return _report(baseline, voice, calls, checks, logged)
    finally:
        db.dispose()
        drop_schema(args.pg, schema)
        shutil.rmtree(var_dir, ignore_errors=True)


def _report(baseline: Server, voice: Server, calls: Calls, checks: dict[str, int], logged: list[str]) -> int:
    """Print the summary table; 1 when a target or a check is missed."""
    ok = True

    def row(measure: str, figure: str, bare: str, target: str, met: bool | None = None) -> None:
        nonlocal ok
        ok = ok and met is not False
        verdict = "" if met is None else (" **met**" if met else " **NOT MET**")
        print(f"| {measure} | {figure} | {bare} | {target}{verdict} |")

    print("\n| measure | canvass | bare Flask (same run) | target |")
    print("|---|---|---|---|")
    ratio = f" = {voice.best / baseline.best:.0%} of bare" if baseline.best else ""
    row(
        f"highest sustained rate (p99 <= {TARGET_P99_MS:g} ms, no errors, rate kept)",
        f"{voice.best} req/s{_p99(voice.best_trial)}{ratio}",
        f"{baseline.best} req/s{_p99(baseline.best_trial)}",
        f">= {TARGET_RATE} req/s:",
        voice.best >= TARGET_RATE,
    )
    for rate, (trial, cpu) in voice.fixed.items():
        bare, bare_cpu = baseline.fixed[rate]
        at_target = rate == TARGET_RATE
        scheduler = f" + scheduler {voice.scheduler[rate]:.2f}" if rate in voice.scheduler else ""
        row(
            f"at {rate} req/s offered: p50 / p95 / p99",
            f"{_percentiles(trial)}, {trial.errors} errors{'' if trial.kept else ', rate not kept'}; "
            f"gunicorn CPU {cpu:.2f}{scheduler} ms/req; p99 {trial.p(0.99) / bare.p(0.99):.1f}x bare",
            f"{_percentiles(bare)}, {bare.errors} errors; CPU {bare_cpu:.2f} ms/req",
            f"p99 <= {TARGET_P99_MS:g} ms:" if at_target else "—",
            trial.sustained(TARGET_P99_MS) if at_target else None,
        )
    assert voice.media is not None and baseline.media is not None
    (media, cpu), (bare_media, bare_cpu) = voice.media, baseline.media
    row(
        f"cached prompt, GET /media/<name>.wav at {MEDIA_RATE} req/s: p50 / p95 / p99",
        f"{_percentiles(media)}, {media.errors} errors; CPU {cpu:.2f} ms/req; "
        f"p99 {media.p(0.99) / bare_media.p(0.99):.1f}x bare",
        f"{_percentiles(bare_media)}; CPU {bare_cpu:.2f} ms/req",
        f"p99 <= {TARGET_MEDIA_P99_MS:g} ms:",
        media.sustained(TARGET_MEDIA_P99_MS),
    )
    completed = checks["completed by the client"]
    stored = checks["of those, call completed and flow ended 'completed'"]
    row(
        "calls completed by the client / stored as completed (call and flow)",
        f"{completed:,} / {stored:,} (of {calls.count:,} started; {checks['calls in the database']:,} calls stored)",
        "—",
        "all:",
        0 < completed == checks["of those, found"] == stored,
    )
    row(
        "their funnel rows / answers",
        f"{checks['funnel rows found']:,} of {checks['funnel rows expected']:,} / "
        f"{checks['answers found']:,} of {checks['answers expected']:,}",
        "—",
        "all:",
        checks["funnel rows found"] == checks["funnel rows expected"]
        and checks["answers found"] == checks["answers expected"],
    )
    problems = ", ".join(f"{n} {what}" for what, n in calls.problems.items()) or "none"
    row("wrong TwiML (apology, <Say>, no <Gather> ...)", problems, "—", "none:", not calls.problems)
    server_errors = sum(n for status, n in calls.statuses.items() if status >= 500)
    timeouts = calls.statuses.get(0, 0)
    row(
        "5xx answers / no answer (timeouts, resets; search above the limit) / errors logged",
        f"{server_errors} / {timeouts} / {len(logged)}",
        "—",
        "no 5xx:",
        not server_errors,
    )
    for line in logged[:5]:
        print(f"  log: {line}")
    return 0 if ok else 1


def _p99(trial: Trial | None) -> str:
    return f" (p99 {trial.p(0.99):.1f} ms)" if trial else ""


def _percentiles(trial: Trial) -> str:
    return f"{trial.p(0.5):.1f} / {trial.p(0.95):.1f} / {trial.p(0.99):.1f} ms"


if __name__ == "__main__":
    sys.exit(main())
