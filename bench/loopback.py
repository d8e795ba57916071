"""Web benchmarks on loopback: a gunicorn server, an open-loop client, percentiles, signatures.

Shared by ``bench.inbound`` and ``bench.voice``. The client is open loop (asyncio +
aiohttp): each request leaves at its scheduled time whether or not earlier ones were
answered, so a slow server shows as latency and a missed rate, not as a politely slower
client. It runs on the same machine as the server, so its CPU is part of every figure;
each benchmark therefore measures a bare Flask endpoint (``bench.bare``) with the same
client in the same run.

Usage::

    server = serve("web.wsgi:app", port, env, workers=2)
    try:
        best, trial = highest_rate(lambda rate, attempt: offer(url, rate, 5, make_form), limit_ms=20)
    finally:
        stop(server)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
ATTEMPTS = 3  # tries of an offered rate before it counts as not sustained (the machine is shared)
TIMEOUT_S = 10.0
# The offered rate counts as kept when the load took at most this much longer than scheduled.
KEPT = 0.95

Form = tuple[dict[str, str], dict[str, str]]  # the form, and its headers (the signature)


def bench_parser(doc: str, *, redis_db: int, step: float, step_help: str) -> argparse.ArgumentParser:
    """The options of a gunicorn benchmark: ``--pg``, ``--redis`` (flushed), ``--step``, ``--gunicorn-workers``."""
    from bench.dbsetup import add_pg_option

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    add_pg_option(parser)
    # Flushed at the start: give it a database number nothing else uses.
    parser.add_argument("--redis", default=f"redis://127.0.0.1:6379/{redis_db}")
    parser.add_argument("--step", type=float, default=step, help=step_help)
    parser.add_argument(
        "--gunicorn-workers", type=int, default=2, help="sync workers of both servers (bare and canvass)"
    )
    return parser


def canvass_env(database_url: str, redis_url: str, base: str, sid: str, token: str, **more: str) -> dict[str, str]:
    """The environment of a canvass server on loopback: Twilio with a fake account, served at ``base``."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CANVASS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": sid,
        "TWILIO_AUTH_TOKEN": token,
        "PUBLIC_BASE_URL": base,
        "SECRET_KEY": "bench",
        "PYTHONPATH": str(ROOT),
        **more,
    }


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: str, port: int, env: dict[str, str], workers: int = 2, log: Path | None = None) -> subprocess.Popen[Any]:
    """Start ``gunicorn app`` with ``workers`` sync workers on 127.0.0.1:``port``; wait until it answers."""
    out = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}", app],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=out,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError as exc:
            if getattr(exc, "code", None):  # the bare app answers 404 on /healthz: it is up
                return proc
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{app} did not start")


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a server started by :func:`serve` (gunicorn stops its workers)."""
    proc.terminate()
    proc.wait(timeout=60)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (gunicorn's workers)."""
    pids = [str(pid), *subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has been busy so far (every core, every process), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def named_cpu_s(name: str) -> float:
    """CPU seconds used so far by the running processes called ``name`` (``postgres``, ``redis-server``)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm, rest = stat.split(" (", 1)[1].rsplit(")", 1)
        if comm == name:
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def percentile_ms(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values`` in seconds, in milliseconds (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)] * 1000


def signed(validator: RequestValidator, url: str, form: dict[str, str]) -> Form:
    """``form`` with the ``X-Twilio-Signature`` Twilio would send to ``url``."""
    return form, {"X-Twilio-Signature": validator.compute_signature(url, form)}


@dataclasses.dataclass
class Trial:
    """One offered load and what came back."""

    rate: float  # offered, requests per second
    latencies: list[float] = dataclasses.field(default_factory=list)  # seconds, every request
    # Latencies by the kind of request, when the load mixes kinds.
    by_kind: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    # How late independent requests left against their schedule: the client's own delay
    # (a CPU-starved client shows here, not as the server's latency).
    lags: list[float] = dataclasses.field(default_factory=list)
    client_cpu_s: float = 0.0  # CPU the client spent on this trial
    errors: int = 0  # not the expected status, timed out, reset, or a wrong document
    statuses: dict[int, int] = dataclasses.field(default_factory=dict)  # HTTP status -> count (0: no answer)
    scheduled: float = 0.0  # seconds from the first scheduled send to the last one's slot
    elapsed: float = 0.0  # seconds from the start to the last answer

    @property
    def requests(self) -> int:
        """Requests sent."""
        return sum(self.statuses.values())

    @property
    def kept(self) -> bool:
        """True when the load took at most ~5 % longer than its schedule (the rate was kept)."""
        return self.elapsed * KEPT <= self.scheduled

    @property
    def client_cpu_ms(self) -> float:
        """The client's CPU per request sent, in ms."""
        return self.client_cpu_s / max(1, self.requests) * 1000

    def p(self, q: float, kind: str | None = None) -> float:
        """The ``q`` quantile of latency in ms (of one kind of request, if given)."""
        return percentile_ms(self.by_kind.get(kind, []) if kind else self.latencies, q)

    def lag_ms(self, q: float) -> float:
        """The ``q`` quantile of how late requests left, in ms."""
        return percentile_ms(self.lags, q)

    def sustained(self, limit_ms: float) -> bool:
        """Every request answered as expected, the rate kept, and p99 within ``limit_ms``."""
        return not self.errors and self.kept and bool(self.latencies) and self.p(0.99) <= limit_ms

    def summary(self) -> str:
        """``p50 1.2 ms, p95 3.4 ms, p99 9.8 ms, 0 errors`` (and what else went wrong)."""
        text = (
            f"p50 {self.p(0.5):.1f} ms, p95 {self.p(0.95):.1f} ms, p99 {self.p(0.99):.1f} ms, "
            f"{self.errors} errors of {self.requests}"
        )
        if not self.kept:
            text += f"; offered rate not kept ({self.requests / self.elapsed:.0f} req/s)"
        return text + f"; client lag p99 {self.lag_ms(0.99):.1f} ms, client CPU {self.client_cpu_ms:.2f} ms/req"


class OpenLoop:
    """An aiohttp session that sends requests at their scheduled times and tallies a :class:`Trial`.

    Use inside ``async with``; times are seconds after the context was entered.
    """

    def __init__(self, rate: float) -> None:
        self.trial = Trial(rate=rate)
        self.start = 0.0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OpenLoop:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=400))
        self._cpu = time.process_time()
        self.start = time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.trial.elapsed = time.perf_counter() - self.start
        self.trial.client_cpu_s = time.process_time() - self._cpu
        assert self._session is not None
        await self._session.close()

    async def wait_until(self, at: float, *, independent: bool = True) -> None:
        """Sleep until ``at`` seconds after the start.

        ``independent``: nothing but the clock holds this request back, so its lateness is
        the client's (a request that waited for an earlier answer is not counted).
        """
        self.trial.scheduled = max(self.trial.scheduled, at + 1 / self.trial.rate)
        delay = self.start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if independent:
            self.trial.lags.append(time.perf_counter() - self.start - at)

    async def send(
        self,
        method: str,
        url: str,
        form: Form | None = None,
        *,
        expect: int = 200,
        kind: str = "",
    ) -> bytes | None:
        """Send one request now and time it; the body, or None when the status was not ``expect``."""
        assert self._session is not None
        data, headers = form if form is not None else (None, {})
        t = time.perf_counter()
        status, body = 0, b""
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
            ) as r:
                body = await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError):
            pass
        # Failures count too (a timed-out request took TIMEOUT_S): a saturated server shows.
        latency = time.perf_counter() - t
        self.trial.latencies.append(latency)
        self.trial.by_kind.setdefault(kind, []).append(latency)
        self.trial.statuses[status] = self.trial.statuses.get(status, 0) + 1
        if status != expect:
            self.trial.errors += 1
            return None
        return body

    def wrong(self) -> None:
        """Count an answer that had the right status but the wrong content."""
        self.trial.errors += 1


def offer(
    url: str,
    rate: int,
    seconds: float,
    make_form: Callable[[int], Form] | None = None,
    *,
    method: str = "POST",
    check: Callable[[bytes], bool] | None = None,
    sent: dict[int, float] | None = None,
) -> Trial:
    """Send ``rate`` independent requests per second to ``url`` for ``seconds`` (open loop).

    The forms (and their signatures) are made before the clock starts, so the client
    spends its CPU on sending; without ``make_form`` the requests carry no body. An
    answer that ``check`` refuses counts as an error. ``sent`` receives each request's
    wall-clock send time, by index.
    """
    n = int(rate * seconds)
    forms = [make_form(i) for i in range(n)] if make_form else [None] * n

    async def run() -> Trial:
        async with OpenLoop(rate) as loop:

            async def one(i: int) -> None:
                await loop.wait_until(i / rate)
                if sent is not None:
                    sent[i] = time.time()
                body = await loop.send(method, url, forms[i])
                if body is not None and check is not None and not check(body):
                    loop.wrong()

            await asyncio.gather(*(one(i) for i in range(n)))
        return loop.trial

    return asyncio.run(run())


def settle(pid: int, timeout: float = 300.0) -> float:
    """Wait until a server (and its workers) is idle again; return the seconds waited.

    A client that gave up on an overloaded server leaves a backlog of accepted requests
    that the workers still run: the next measurement must not start on top of it.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = tree_cpu_s(pid)
        time.sleep(0.5)
        if tree_cpu_s(pid) - before < 0.02:  # under 4 % of one core
            break
    return time.monotonic() - start


def next_rate(rate: int) -> int:
    """The search's next offered rate: steps of 50 req/s up to 200, then of 100."""
    return rate + (50 if rate < 200 else 100)


def highest_rate(
    trial: Callable[[int, int], Trial],
    limit_ms: float,
    start: int = 50,
    ceiling: int = 3000,
    on_trial: Callable[[Trial], None] | None = None,
) -> tuple[int, Trial | None]:
    """The highest offered rate sustained (:meth:`Trial.sustained`), and its trial.

    ``trial(rate, attempt)`` offers ``rate``; ``attempt`` numbers every try of the search
    (for fresh identities). A rate that fails is tried up to ``ATTEMPTS`` times before the
    search stops there; ``on_trial`` sees every try.
    """
    best, best_trial = 0, None
    rate, attempt = start, 0
    while rate <= ceiling:
        for _ in range(ATTEMPTS):
            result = trial(rate, attempt)
            attempt += 1
            if on_trial is not None:
                on_trial(result)
            if result.sustained(limit_ms):
                break
        else:
            break
        best, best_trial = rate, result
        rate = next_rate(rate)
    return best, best_trial
